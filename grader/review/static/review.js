// grader review: decisions by keyboard and buttons.  Every text shown is set with textContent
// (never innerHTML): answers are written by candidates.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var statusEl = document.getElementById("status");

  function say(text, isError) {
    statusEl.textContent = text;
    statusEl.className = "status" + (isError ? " error" : "");
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().then(function (data) {
        if (!resp.ok) { throw new Error(data.error || data.detail && JSON.stringify(data.detail) || resp.statusText); }
        return data;
      });
    });
  }

  function fmt(x) { return x === null || x === undefined ? "" : String(Math.round(x * 100) / 100); }

  function showProgress(data) {
    document.getElementById("progress").textContent = data.progress;
  }

  function describe(d) {
    var text = "#" + d.id + " " + d.at + " " + d.reviewer + ": " + d.kind + " " + fmt(d.old_score) + " → " + fmt(d.new_score);
    if (d.note) { text += " “" + d.note + "”"; }
    if (d.conflict) {
      text += " — conflict: made without seeing #" + d.conflict.id + " (" + d.conflict.reviewer + ", " + fmt(d.conflict.new_score) + ")";
    }
    return text;
  }

  function applyToAnswer(sec, d) {
    sec.setAttribute("data-seen", String(d.id));
    var fin = sec.querySelector(".final");
    if (fin) {
      fin.textContent = "";
      var span = document.createElement("span");
      span.className = "human";
      span.textContent = "✎ " + fmt(d.new_score);
      fin.appendChild(span);
      fin.appendChild(document.createTextNode("/" + sec.getAttribute("data-max")));
    }
    sec.classList.remove("needs");
    var hist = sec.querySelector(".history");
    if (hist) {
      var ol = hist.querySelector("ol");
      if (!ol) { ol = document.createElement("ol"); hist.appendChild(ol); }
      var li = document.createElement("li");
      li.className = "decision" + (d.conflict ? " conflict" : "");
      li.setAttribute("data-decision", String(d.id));
      li.textContent = describe(d);
      ol.appendChild(li);
    }
  }

  // ------------------------------------------------------------- candidate page
  var answers = Array.prototype.slice.call(document.querySelectorAll("section.answer"));
  var current = -1;

  function select(k) {
    if (!answers.length) { return; }
    k = Math.max(0, Math.min(answers.length - 1, k));
    if (current >= 0) { answers[current].classList.remove("current"); }
    current = k;
    answers[k].classList.add("current");
    answers[k].scrollIntoView({ block: "nearest" });
  }

  function decide(sec, kind) {
    var i = sec.getAttribute("data-answer");
    var scoreInput = sec.querySelector(".score");
    var body = { kind: kind, note: sec.querySelector(".note").value, seen: parseInt(sec.getAttribute("data-seen"), 10) || 0 };
    if (kind === "score") {
      if (scoreInput.value === "") { say("type a score first", true); return; }
      body.score = parseFloat(scoreInput.value);
    }
    post("/api/answer/" + i, body).then(function (data) {
      var d = data.decisions[0];
      applyToAnswer(sec, d);
      var tot = document.getElementById("candidate-total");
      if (tot) { tot.textContent = d.candidate_total; }
      scoreInput.value = "";
      sec.querySelector(".note").value = "";
      showProgress(data);
      say(d.conflict ? "saved; conflict with " + d.conflict.reviewer + "'s decision #" + d.conflict.id : "saved " + fmt(d.new_score), !!d.conflict);
    }).catch(function (e) { say(e.message, true); });
  }

  answers.forEach(function (sec, k) {
    sec.addEventListener("click", function () { if (current !== k) { select(k); } });
    sec.querySelector(".save").addEventListener("click", function () { decide(sec, "score"); });
    sec.querySelector(".accept").addEventListener("click", function () { decide(sec, "accept"); });
    var la = sec.querySelector(".llm-accept"), lr = sec.querySelector(".llm-reject");
    if (la) { la.addEventListener("click", function () { decide(sec, "llm-accept"); }); }
    if (lr) { lr.addEventListener("click", function () { decide(sec, "llm-reject"); }); }
    sec.querySelector(".score").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); decide(sec, "score"); }
    });
    sec.querySelector(".note").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); decide(sec, "score"); }
    });
  });

  var verdictBox = document.getElementById("verdict");
  function setVerdict(v) {
    var ci = verdictBox.getAttribute("data-candidate");
    post("/api/verdict/" + ci, { verdict: v, note: document.getElementById("verdict-note").value,
                                  seen: parseInt(verdictBox.getAttribute("data-seen"), 10) || 0 })
      .then(function (data) {
        var d = data.decisions[0];
        verdictBox.setAttribute("data-seen", String(d.id));
        var now = document.getElementById("verdict-now");
        now.textContent = d.verdict;
        now.className = "verdict " + d.verdict;
        say(d.conflict ? "decision saved; conflict with " + d.conflict.reviewer + "'s #" + d.conflict.id : "decision: " + d.verdict, !!d.conflict);
      }).catch(function (e) { say(e.message, true); });
  }
  if (verdictBox) {
    Array.prototype.forEach.call(verdictBox.querySelectorAll("button[data-verdict]"), function (b) {
      b.addEventListener("click", function () { setVerdict(b.getAttribute("data-verdict")); });
    });
  }

  if (answers.length) {
    var hash = window.location.hash.replace("#", "");
    var start = 0;
    answers.forEach(function (sec, k) { if (sec.id === hash) { start = k; } });
    select(start);
  }

  // Digits typed within a moment of each other make one score ("1", "0" is 10).
  var lastDigitAt = 0;
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    if (ev.key === "Escape" && typing) { t.blur(); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (document.body.getAttribute("data-page") === "ranking" && ev.key === "/") {
      ev.preventDefault(); document.getElementById("search").focus(); return;
    }
    if (verdictBox && ev.shiftKey && "AHR".indexOf(ev.key) >= 0) {
      setVerdict({ A: "advance", H: "hold", R: "reject" }[ev.key]); ev.preventDefault(); return;
    }
    var link;
    if (ev.key === "n" && (link = document.getElementById("next-candidate"))) { window.location = link.href; return; }
    if (ev.key === "p" && (link = document.getElementById("prev-candidate"))) { window.location = link.href; return; }
    if (!answers.length || current < 0) { return; }
    var sec = answers[current];
    var score = sec.querySelector(".score");
    if (ev.key === "j" || ev.key === "ArrowDown") { ev.preventDefault(); select(current + 1); }
    else if (ev.key === "k" || ev.key === "ArrowUp") { ev.preventDefault(); select(current - 1); }
    else if (/^[0-9.]$/.test(ev.key)) {
      var now = Date.now();
      score.value = (now - lastDigitAt < 1000 ? score.value : "") + ev.key;
      lastDigitAt = now;
      ev.preventDefault();
    }
    else if (ev.key === "Backspace") { score.value = score.value.slice(0, -1); ev.preventDefault(); }
    else if (ev.key === "Enter") { ev.preventDefault(); decide(sec, "score"); }
    else if (ev.key === "a") { ev.preventDefault(); decide(sec, "accept"); }
    else if (ev.key === "l" && sec.querySelector(".llm-accept")) { ev.preventDefault(); decide(sec, "llm-accept"); }
    else if (ev.key === "x" && sec.querySelector(".llm-reject")) { ev.preventDefault(); decide(sec, "llm-reject"); }
    else if (ev.key === "e") { ev.preventDefault(); sec.querySelector(".note").focus(); }
  });

  // ------------------------------------------------------------- question page
  Array.prototype.forEach.call(document.querySelectorAll("section.group"), function (g) {
    g.querySelector(".grade-group").addEventListener("click", function () {
      var input = g.querySelector(".score");
      if (input.value === "") { say("type a score for the group first", true); return; }
      var members = g.getAttribute("data-members").split(",").map(function (p) {
        var ab = p.split(":"); return [parseInt(ab[0], 10), parseInt(ab[1], 10)];
      });
      post("/api/group", { question: parseInt(g.getAttribute("data-question"), 10), members: members,
                           score: parseFloat(input.value), note: g.querySelector(".note").value })
        .then(function (data) {
          var seen = {};
          data.decisions.forEach(function (d) {
            seen[d.answer] = d.id;
            var row = g.querySelector('tr[data-answer="' + d.answer + '"] .final');
            if (row) {
              row.textContent = "";
              var span = document.createElement("span");
              span.className = "human"; span.textContent = "✎ " + fmt(d.new_score);
              row.appendChild(span);
            }
          });
          g.setAttribute("data-members", members.map(function (m) { return m[0] + ":" + (seen[m[0]] || m[1]); }).join(","));
          showProgress(data);
          var conflicts = data.decisions.filter(function (d) { return d.conflict; }).length;
          say("graded " + data.decisions.length + " answers" + (conflicts ? "; " + conflicts + " conflict(s)" : ""), conflicts > 0);
        }).catch(function (e) { say(e.message, true); });
    });
  });
})();
