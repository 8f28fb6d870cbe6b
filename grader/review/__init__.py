"""`grader review`: the hiring team's browser app over a batch run, and the decisions it records.

Pure logic (run, store, state, queue, export) takes and returns pydantic models; `app` only
routes and renders; `server` runs it.  `store` is a leaf (standard library and grader.models):
`grader batch --resume` reads the decisions through it."""
