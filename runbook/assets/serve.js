// runbook serve: the overview checklist of a runbook page, clickable and live.
// The token of the printed URL (?token=) is kept for this tab in sessionStorage, so links
// keep working; every tick sends it in the X-Runbook-Token header.
(function () {
  "use strict";
  var KEY = "runbook-token";
  var params = new URLSearchParams(location.search);
  if (params.get("token")) {
    sessionStorage.setItem(KEY, params.get("token"));
    // Out of the address bar, so a shared link or a screenshot does not carry it.
    params.delete("token");
    var rest = params.toString();
    var address = location.pathname + (rest ? "?" + rest : "") + location.hash;
    history.replaceState(history.state, "", address);
  }
  var token = sessionStorage.getItem(KEY) || "";
  var source = null;

  // Material's instant navigation swaps pages without loading this script again.
  if (window.document$ && window.document$.subscribe) {
    window.document$.subscribe(function () { live(); });
  } else {
    live();
  }

  function live() {
    if (source) {
      source.close();
      source = null;
    }
    var page = document.querySelector(".rb-guide");
    if (!page) {
      return;
    }
    var guide = page.getAttribute("data-rb-guide");
    var focus = page.getAttribute("data-rb-focus");
    var rows = {};

    function el(tag, cls, text) {
      var node = document.createElement(tag);
      if (cls) node.className = cls;
      if (text) node.textContent = text;
      return node;
    }

    function copyButton(command) {
      var button = el("button", "rb-copy", "copy");
      button.type = "button";
      button.title = command;
      button.addEventListener("click", function (event) {
        event.preventDefault();
        var done = function () {
          button.textContent = "copied";
          setTimeout(function () { button.textContent = "copy"; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(command).then(done, function () {});
        } else {
          var area = el("textarea");
          area.value = command;
          document.body.appendChild(area);
          area.select();
          document.execCommand("copy");
          area.remove();
          done();
        }
      });
      return button;
    }

    // Each overview item: its box made clickable, and a line for what exec does, the state
    // and the refusal of a tick.
    document.querySelectorAll(".rb-step").forEach(function (mark) {
      var item = mark.closest("li");
      var box = item && item.querySelector("input[type=checkbox]");
      if (!box) return;
      var number = parseInt(mark.getAttribute("data-rb-step"), 10);
      box.disabled = false;
      box.setAttribute("data-rb-step", String(number));
      var info = el("div", "rb-info");
      var row = {
        item: item, box: box, info: info,
        does: el("span", "rb-does"), state: el("span", "rb-state"),
        run: el("span", "rb-run"), note: el("span", "rb-note"),
        command: el("code", "rb-command"), text: null,
      };
      info.append(row.does, row.state, row.run, row.command, row.note);
      item.appendChild(info);
      rows[number] = row;
      box.addEventListener("click", function () { tick(number, box.checked); });
    });

    var banner = null;
    if (focus) {
      banner = el("div", "rb-info rb-banner");
      var content = document.querySelector(".md-content__inner") || document.body;
      content.insertBefore(banner, content.firstChild.nextSibling);
    }

    function describe(step) {
      return step.does.join(", ") + (step.hosts.length ? " on " + step.hosts.join(", ") : "");
    }

    function done(step) {
      if (!step.done) return "";
      var how = { exec: "by a run", check: "with runbook check", serve: "here", file: "in the file" };
      var by = step.by ? " by " + step.by : "";
      var at = step.at ? " at " + step.at.replace("T", " ").slice(0, 19) : "";
      return "done " + (how[step.how] || step.how) + by + at;
    }

    function showRun(row, step, run) {
      row.item.classList.remove("rb-running");
      row.run.textContent = "";
      if (!run) return;
      if (run.running && run.step === step.number) {
        row.item.classList.add("rb-running");
        row.run.textContent = "running now" + (run.block ? ": block " + run.block : "") +
          (run.host ? " on " + run.host : "");
      } else if (run.results[String(step.number)]) {
        row.run.textContent = "last run: " + run.results[String(step.number)];
      }
    }

    // What exec does with a step, its state and its command, in one line of ``node``.
    function fill(node, step, lead) {
      var text = lead + "exec " + describe(step) + " | " + (done(step) || "not done");
      if (node.getAttribute("data-rb-shown") === text + step.command) return;
      node.setAttribute("data-rb-shown", text + step.command);
      node.textContent = "";
      node.append(
        el("span", "rb-does", lead + "exec " + describe(step)),
        el("span", "rb-state", done(step) || "not done"),
        el("code", "rb-command", step.command), copyButton(step.command));
    }

    function apply(state) {
      if (!state || !state.steps) return;
      state.steps.forEach(function (step) {
        var row = rows[step.number];
        if (focus && String(step.number) === focus && banner) {
          fill(banner, step, "step " + step.number + ": ");
        }
        var selector = ".rb-stepinfo[data-rb-step='" + step.number + "']";
        document.querySelectorAll(selector).forEach(function (node) {
          node.classList.add("rb-info");
          fill(node, step, "");
        });
        if (!row) return;
        row.text = step.item;
        row.box.checked = step.done;
        row.item.classList.toggle("rb-done", step.done);
        row.does.textContent = "exec " + describe(step);
        row.state.textContent = done(step);
        if (row.command.textContent !== step.command) {
          row.command.textContent = step.command;
          row.command.after(copyButton(step.command));
        }
        showRun(row, step, state.run);
      });
      document.documentElement.setAttribute("data-rb-live", "1");
    }

    function tick(number, checked) {
      var row = rows[number];
      row.note.textContent = "";
      row.item.classList.add("rb-busy");
      fetch("/_runbook/tick", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Runbook-Token": token },
        body: JSON.stringify({ guide: guide, step: number, checked: checked, text: row.text }),
      }).then(function (response) {
        return response.json().then(function (body) {
          row.item.classList.remove("rb-busy");
          if (response.ok) {
            if (!body.changed) {
              row.note.textContent = "already " + (checked ? "ticked" : "cleared");
            }
            apply(body.state);
            return;
          }
          row.box.checked = !checked;
          row.note.textContent = "not " + (checked ? "ticked" : "cleared") + ": " + body.error;
          if (body.state) apply(body.state);
        });
      }).catch(function (error) {
        row.item.classList.remove("rb-busy");
        row.box.checked = !checked;
        row.note.textContent = "not saved: " + error;
      });
    }

    source = new EventSource("/_runbook/events?guide=" + encodeURIComponent(guide));
    source.onmessage = function (event) { apply(JSON.parse(event.data)); };
    source.addEventListener("reload", function () {
      source.close();
      location.reload();
    });
  }
})();
