/* gasp-rl curriculum explorer (vanilla JS, no network, no dependencies).
 *
 * Reads the run data from the JSON script element #gasp-data and shows, per goalpost,
 * the teacher's lemmas and the lifts built on them (lift.parent_id -> lemma.id) as a tree.
 * Every string that came from the model is untrusted: it only ever enters the page through
 * textContent or DOM attribute setters, never through innerHTML or string-built markup.
 */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("gasp-data").textContent || "{}");
  var RUNS = Array.isArray(DATA.runs) ? DATA.runs : [];
  var NONE = "\u0000none"; // group key of proposals that carry no goalpost (AZR, orphans)
  var PAGE = 100;
  var SEARCH_FIELDS = ["id", "code", "message", "detail", "rejection_reason", "raw", "task_type", "axis", "phase"];

  var state = { run: 0, goalpost: null, text: "", acceptedOnly: false, phase: "", reason: "" };
  var indexes = {};

  function $(id) { return document.getElementById(id); }

  /* An element with a class and text; text goes through textContent only. */
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmt(x) {
    return typeof x === "number" ? (Math.round(x * 1000) / 1000).toString() : "–";
  }

  function outcome(p) {
    return p.accepted ? "accepted" : (p.rejection_reason || "rejected");
  }

  /* Per run: proposals by id, children by parent id, root proposals grouped by goalpost. */
  function index(runIdx) {
    if (indexes[runIdx]) return indexes[runIdx];
    var run = RUNS[runIdx] || { proposals: [], goalposts: {}, solver: {} };
    var props = Array.isArray(run.proposals) ? run.proposals : [];
    var byId = {}, children = {}, groups = {}, order = [];
    props.forEach(function (p) { if (p.id !== null && p.id !== undefined) byId[p.id] = p; });
    props.forEach(function (p) {
      var parent = p.parent_id !== null && p.parent_id !== undefined ? byId[p.parent_id] : undefined;
      if (parent && parent !== p) {
        (children[parent.id] = children[parent.id] || []).push(p);
        return;
      }
      p._orphan = p.parent_id !== null && p.parent_id !== undefined;
      var key = p.goalpost_id !== null && p.goalpost_id !== undefined ? String(p.goalpost_id) : NONE;
      if (!groups[key]) { groups[key] = []; order.push(key); }
      groups[key].push(p);
    });
    order.sort(function (a, b) { return a === NONE ? 1 : b === NONE ? -1 : 0; });
    indexes[runIdx] = { run: run, byId: byId, children: children, groups: groups, order: order };
    return indexes[runIdx];
  }

  function haystack(p) {
    if (p._hay === undefined) {
      var parts = SEARCH_FIELDS.map(function (k) { return p[k] === null || p[k] === undefined ? "" : String(p[k]); });
      parts = parts.concat(p.inputs || [], p.outputs || []);
      p._hay = parts.join("\n").toLowerCase();
    }
    return p._hay;
  }

  function matches(p) {
    if (state.acceptedOnly && !p.accepted) return false;
    if (state.phase && p.phase !== state.phase) return false;
    if (state.reason && outcome(p) !== state.reason) return false;
    if (state.text && haystack(p).indexOf(state.text) < 0) return false;
    return true;
  }

  /* A node is shown when it matches or leads to a descendant that does (shown dimmed). */
  function visible(idx, p, memo) {
    if (memo.has(p)) return memo.get(p);
    memo.set(p, false); // guards against cycles in damaged data
    var kids = idx.children[p.id] || [];
    var v = matches(p) || kids.some(function (c) { return visible(idx, c, memo); });
    memo.set(p, v);
    return v;
  }

  function filtersActive() {
    return state.text || state.acceptedOnly || state.phase || state.reason;
  }

  function goalpostTitle(idx, key) {
    if (key === NONE) return "Proposals without a goalpost (unguided / orphans)";
    var t = idx.run.goalposts && idx.run.goalposts[key];
    return t && t !== key ? key + " — " + t : key;
  }

  function countNodes(idx, roots, memo) {
    var c = { lemma: 0, lemmaOk: 0, lift: 0, liftOk: 0, other: 0 };
    function walk(p) {
      if (!visible(idx, p, memo)) return;
      if (matches(p)) {
        if (p.phase === "lemma") { c.lemma++; if (p.accepted) c.lemmaOk++; }
        else if (p.phase === "lift") { c.lift++; if (p.accepted) c.liftOk++; }
        else c.other++;
      }
      (idx.children[p.id] || []).forEach(walk);
    }
    roots.forEach(walk);
    return c;
  }

  function renderGoalposts() {
    var idx = index(state.run), list = $("gp-list"), memo = new Map();
    list.textContent = "";
    var shown = 0;
    idx.order.forEach(function (key) {
      var c = countNodes(idx, idx.groups[key], memo);
      var total = c.lemma + c.lift + c.other;
      if (!total && filtersActive()) return;
      shown++;
      var li = el("li"), btn = el("button", key === state.goalpost ? "active" : "");
      btn.type = "button";
      btn.setAttribute("data-goalpost", key === NONE ? "" : key);
      btn.appendChild(el("span", "gp-title", goalpostTitle(idx, key)));
      var counts = "lemmas " + c.lemmaOk + "/" + c.lemma + " accepted · lifts " + c.liftOk + "/" + c.lift;
      if (c.other) counts += " · other " + c.other;
      btn.appendChild(el("span", "counts", counts));
      btn.addEventListener("click", function () { state.goalpost = key; renderGoalposts(); renderTree(); });
      li.appendChild(btn);
      list.appendChild(li);
    });
    if (!shown) list.appendChild(el("li", "empty", idx.order.length ? "No goalpost matches the filters." : "No proposals recorded in this run."));
  }

  function ioTable(p) {
    var t = el("table", "io"), head = el("tr");
    head.appendChild(el("th", "", "input"));
    head.appendChild(el("th", "", "output"));
    t.appendChild(head);
    var ins = p.inputs || [], outs = p.outputs || [];
    for (var i = 0; i < Math.max(ins.length, outs.length); i++) {
      var tr = el("tr");
      tr.appendChild(el("td", "", ins[i] === undefined ? "" : ins[i]));
      tr.appendChild(el("td", "", outs[i] === undefined ? "" : outs[i]));
      t.appendChild(tr);
    }
    return t;
  }

  function fillBody(idx, p, body, memo) {
    var facts = [
      ["task type", p.task_type], ["axis", p.axis], ["valid", p.valid], ["outcome", outcome(p)],
      ["pass rate", fmt(p.pass_rate)], ["student attempts", p.n_student], ["reward", fmt(p.reward)],
      ["similarity (question)", fmt(p.similarity_question)], ["similarity (code)", fmt(p.similarity_code)],
      ["goalpost alignment", fmt(p.alignment_margin)], ["judge", fmt(p.alignment_judge)],
      ["axis adherence", fmt(p.adherence)],
      ["tokens", p.tokens], ["parent", p.parent_id]
    ];
    var box = el("div", "facts");
    facts.forEach(function (f) {
      if (f[1] === null || f[1] === undefined || f[1] === "–") return;
      var item = el("span", "fact");
      item.appendChild(el("b", "", f[0]));
      item.appendChild(el("span", "mono", f[1]));
      box.appendChild(item);
    });
    body.appendChild(box);
    if (p.detail) body.appendChild(el("pre", "detail", p.detail));
    if (p.message) { body.appendChild(el("div", "kv", "message")); body.appendChild(el("pre", "message", p.message)); }
    if (p.code) { body.appendChild(el("div", "kv", "code")); body.appendChild(el("pre", "code", p.code)); }
    if ((p.inputs && p.inputs.length) || (p.outputs && p.outputs.length)) body.appendChild(ioTable(p));
    var solver = (idx.run.solver || {})[p.id];
    if (solver && solver.length) {
      body.appendChild(el("div", "kv", "as a student question (solver phase)"));
      var ul = el("ul");
      solver.forEach(function (s) {
        ul.appendChild(el("li", "", (s.task_type || "?") + ": mean reward " + fmt(s.mean_reward) + " over " + (s.n === null ? "?" : s.n)));
      });
      body.appendChild(ul);
    }
    if (p.raw) {
      var raw = el("details"), sum = el("summary", "kv", "raw model text");
      raw.appendChild(sum);
      raw.appendChild(el("pre", "raw", p.raw));
      body.appendChild(raw);
    }
    var kids = (idx.children[p.id] || []).filter(function (c) { return visible(idx, c, memo); });
    if (kids.length) {
      var childBox = el("div", "children");
      appendPaged(idx, kids, childBox, memo);
      body.appendChild(childBox);
    }
  }

  function renderNode(idx, p, memo) {
    var d = el("details", "node " + (p.accepted ? "accepted" : "rejected") + (matches(p) ? "" : " context"));
    d.setAttribute("data-id", p.id === null || p.id === undefined ? "" : String(p.id));
    d.setAttribute("data-phase", p.phase || "");
    var s = el("summary");
    s.appendChild(el("span", "badge " + (p.phase || ""), p.phase || "?"));
    s.appendChild(el("span", "mono", p.id));
    s.appendChild(el("span", "badge " + (p.accepted ? "ok" : "bad"), outcome(p)));
    var kv = "it " + (p.iteration === null ? "?" : p.iteration);
    if (p.step !== null && p.step !== undefined) kv += " · step " + p.step;
    if (p.axis) kv += " · axis " + p.axis;
    kv += " · p=" + fmt(p.pass_rate) + " · r=" + fmt(p.reward);
    var nKids = (idx.children[p.id] || []).length;
    if (nKids) kv += " · " + nKids + " lift" + (nKids > 1 ? "s" : "");
    if (p._orphan) kv += " · parent " + p.parent_id + " not recorded";
    s.appendChild(el("span", "kv", kv));
    d.appendChild(s);
    var body = el("div", "body"), built = false;
    d.appendChild(body);
    function build() { if (!built) { built = true; fillBody(idx, p, body, memo); } }
    d.addEventListener("toggle", function () { if (d.open) build(); });
    if (state.text && !matches(p)) { build(); d.open = true; } // reveal the matching descendants
    return d;
  }

  /* Nodes in pages of PAGE, so a run with thousands of unguided proposals stays responsive. */
  function appendPaged(idx, nodes, box, memo) {
    var shown = 0;
    function more() {
      var btn = box.querySelector(":scope > button.more");
      if (btn) btn.remove();
      nodes.slice(shown, shown + PAGE).forEach(function (p) { box.appendChild(renderNode(idx, p, memo)); });
      shown = Math.min(nodes.length, shown + PAGE);
      if (shown < nodes.length) {
        var b = el("button", "more", "show " + Math.min(PAGE, nodes.length - shown) + " more of " + (nodes.length - shown));
        b.type = "button";
        b.addEventListener("click", more);
        box.appendChild(b);
      }
    }
    more();
  }

  function renderTree() {
    var tree = $("tree"), idx = index(state.run), memo = new Map();
    tree.textContent = "";
    if (state.goalpost === null || !idx.groups[state.goalpost]) {
      tree.appendChild(el("p", "empty", "Pick a goalpost on the left to see its lemmas and their lifts."));
      return;
    }
    tree.appendChild(el("h3", "", goalpostTitle(idx, state.goalpost)));
    var roots = idx.groups[state.goalpost].filter(function (p) { return visible(idx, p, memo); });
    if (!roots.length) { tree.appendChild(el("p", "empty", "Nothing under this goalpost matches the filters.")); return; }
    appendPaged(idx, roots, tree, memo);
  }

  function fillSelect(sel, values, labels) {
    var keep = sel.options[0];
    sel.textContent = "";
    if (keep) sel.appendChild(keep);
    values.forEach(function (v, i) {
      var o = el("option", "", labels ? labels[i] : v);
      o.value = v;
      sel.appendChild(o);
    });
  }

  function resetRun() {
    var idx = index(state.run), props = idx.run.proposals || [];
    var phases = [], reasons = [];
    props.forEach(function (p) {
      if (p.phase && phases.indexOf(p.phase) < 0) phases.push(p.phase);
      var o = outcome(p);
      if (reasons.indexOf(o) < 0) reasons.push(o);
    });
    state.phase = ""; state.reason = "";
    fillSelect($("f-phase"), phases);
    fillSelect($("f-reason"), reasons.sort());
    state.goalpost = idx.order.length === 1 ? idx.order[0] : null;
    var note = $("explorer-note");
    note.hidden = !idx.run.truncated;
    note.textContent = idx.run.truncated ? idx.run.truncated + " older rejected proposals were left out of this page to keep it small." : "";
    renderGoalposts();
    renderTree();
  }

  function init() {
    var runSel = $("f-run");
    RUNS.forEach(function (r, i) {
      var o = el("option", "", r.label || "run " + (i + 1));
      o.value = String(i);
      runSel.appendChild(o);
    });
    runSel.addEventListener("change", function () { state.run = Number(runSel.value) || 0; resetRun(); });
    var timer = null;
    $("f-text").addEventListener("input", function (e) {
      clearTimeout(timer);
      timer = setTimeout(function () { state.text = e.target.value.trim().toLowerCase(); renderGoalposts(); renderTree(); }, 150);
    });
    $("f-accepted").addEventListener("change", function (e) { state.acceptedOnly = e.target.checked; renderGoalposts(); renderTree(); });
    $("f-phase").addEventListener("change", function (e) { state.phase = e.target.value; renderGoalposts(); renderTree(); });
    $("f-reason").addEventListener("change", function (e) { state.reason = e.target.value; renderGoalposts(); renderTree(); });
    resetRun();
  }

  init();
})();
