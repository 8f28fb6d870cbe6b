"""Reports: one answer or session (`single`), batches (`batch_reports`)."""
