// The page of `convnet serve`: one photo, one task, the server's answer drawn over the photo.
// Plain script (no build step); every request goes to the same origin, every failure ends up
// as a message in #error rather than a half-drawn page.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // Which route answers each task, the task of the models it runs (as /v1/models names it),
  // and which query fields it takes from the form. face-api's networks are one fixed set, so
  // the face routes take no ?model=.
  const ROUTES = {
    classify: { path: "/v1/classify", models: "classify", fields: ["top"], pickModel: true },
    detect: { path: "/v1/detect", models: "detect", fields: ["score"], pickModel: true },
    segment: { path: "/v1/segment", models: "segment", fields: [], pickModel: true },
    faces: { path: "/v1/faces", models: "faces", fields: [], pickModel: false },
    identify: { path: "/v1/faces/identify", models: "faces", fields: ["threshold"], pickModel: false },
  };

  // The server's own series palette (Okabe-Ito, convnet_vision::chart::PALETTE, same order), so
  // a class has the same colour here as in the server's `format=png` pictures.
  const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000", "#f0e442"];
  const colour = (index) => PALETTE[(index >>> 0) % PALETTE.length];
  const BLUE = colour(0), ORANGE = colour(1), GREEN = colour(2), SKY = colour(5), GREY = "#9aa0a6";

  // Black or white text, whichever reads better on `hex`.
  function ink(hex) {
    const n = parseInt(hex.slice(1), 16);
    const luma = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
    return luma > 140 ? "#000" : "#fff";
  }

  const state = {
    file: null, // the chosen photo (a File)
    bitmap: null, // it, decoded by the browser
    models: [], // GET /v1/models
    seq: 0, // the latest request; older answers are dropped
  };

  // ---- messages -------------------------------------------------------------------------

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
  }

  function clearError() {
    const box = $("error");
    box.textContent = "";
    box.hidden = true;
  }

  function setStatus(text, resultState) {
    $("status").textContent = text;
    if (resultState) $("result").dataset.state = resultState;
  }

  // ---- HTTP -----------------------------------------------------------------------------

  // fetch() that always resolves to parsed JSON or throws an Error whose message is the
  // server's one-line `error` (or what went wrong reaching it).
  async function api(method, url, options) {
    const init = Object.assign({ method: method }, options || {});
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      throw new Error("could not reach the server: " + (e && e.message ? e.message : e));
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const reason = body && typeof body.error === "string" ? body.error
        : (text && text.length < 300 ? text.trim() : response.statusText);
      const error = new Error(reason || "request failed");
      error.status = response.status;
      throw error;
    }
    if (body === null) throw new Error("the server's answer to " + url + " is not JSON");
    return body;
  }

  function photoBody(file) {
    return { body: file, headers: { "Content-Type": file.type || "application/octet-stream" } };
  }

  // ---- the photo ------------------------------------------------------------------------

  async function choosePhoto(file) {
    if (!file) return;
    clearError();
    // An answer still on its way is about the previous photo: drop it.
    state.seq++;
    $("send").disabled = false;
    state.file = file;
    state.bitmap = null;
    $("drop-text").textContent = Math.round(file.size / 1024) + " KiB · choose or drop another photo to replace it";
    clearResult();
    blankCanvas();
    try {
      const bitmap = await decode(file);
      if (state.file !== file) return; // another photo was chosen meanwhile
      state.bitmap = bitmap;
      drawPicture(bitmap.width, bitmap.height);
      setStatus("Photo ready: choose a task and send it.", "ready");
    } catch (_) {
      // The browser cannot show it; the server may still explain why in its own words.
      if (state.file !== file) return;
      setStatus("The browser cannot show this file; send it to see what the server says.", "ready");
    }
  }

  // The server reads pixels as stored (no EXIF rotation), so the preview must too, or boxes
  // would land on a rotated picture.
  async function decode(file) {
    if (window.createImageBitmap) {
      try {
        return await createImageBitmap(file, { imageOrientation: "none" });
      } catch (_) {
        // Fall through to <img>: some browsers refuse the option.
      }
    }
    const url = URL.createObjectURL(file);
    try {
      const img = new Image();
      img.src = url;
      await img.decode();
      return img;
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  // No picture (yet): nothing from an earlier photo may stay on screen.
  function blankCanvas() {
    const canvas = $("canvas");
    canvas.width = 640;
    canvas.height = 360;
  }

  function drawPicture(width, height) {
    const canvas = $("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    if (state.bitmap) ctx.drawImage(state.bitmap, 0, 0, width, height);
    return ctx;
  }

  // ---- drawing --------------------------------------------------------------------------

  // Line and text sizes follow the picture so labels stay legible once the canvas is scaled
  // down to the page's width.
  function scale(width, height) {
    const side = Math.max(width, height);
    return { line: Math.max(2, Math.round(side / 400)), font: Math.max(12, Math.round(side / 45)) };
  }

  function drawBox(ctx, box, text, color, sizes) {
    const [x1, y1, x2, y2] = box;
    ctx.lineWidth = sizes.line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    drawTag(ctx, x1 - sizes.line / 2, y1, text, color, sizes, true);
  }

  // A filled label: above (x, y) when `above` and there is room, else just below it.
  function drawTag(ctx, x, y, text, color, sizes, above) {
    ctx.font = "600 " + sizes.font + "px system-ui, sans-serif";
    const pad = Math.round(sizes.font / 4);
    const w = ctx.measureText(text).width + 2 * pad;
    const h = sizes.font + 2 * pad;
    const ty = above && y - h >= 0 ? y - h : y;
    const tx = Math.min(Math.max(0, x), Math.max(0, ctx.canvas.width - w));
    ctx.fillStyle = color;
    ctx.fillRect(tx, ty, w, h);
    ctx.fillStyle = ink(color);
    ctx.textBaseline = "top";
    ctx.fillText(text, tx + pad, ty + pad);
  }

  function drawPoints(ctx, points, color, sizes) {
    ctx.fillStyle = color;
    const r = Math.max(1.5, sizes.line * 0.75);
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  function fixed(x, digits) {
    return typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "?";
  }

  // ---- results --------------------------------------------------------------------------

  function clearResult() {
    $("labels").replaceChildren();
    $("table-wrap").hidden = true;
    $("table-head").replaceChildren();
    $("table-body").replaceChildren();
    $("raw-wrap").hidden = true;
    $("raw").textContent = "";
  }

  function addLabel(text, color, box) {
    const li = document.createElement("li");
    li.className = "label";
    li.textContent = text;
    if (color) li.style.setProperty("--swatch", color);
    if (box) li.dataset.box = box.map((v) => fixed(v, 1)).join(",");
    $("labels").appendChild(li);
  }

  function fillTable(caption, headers, rows) {
    $("table-caption").textContent = caption;
    const head = document.createElement("tr");
    for (const h of headers) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      head.appendChild(th);
    }
    $("table-head").replaceChildren(head);
    const body = $("table-body");
    body.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const cell of row) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    $("table-wrap").hidden = false;
  }

  // Long arrays (encodings, landmarks) and base64 images would drown the raw view.
  function abbreviate(key, value) {
    if (Array.isArray(value) && value.length > 16) return "[" + value.length + " items]";
    if (typeof value === "string" && value.length > 200) return value.slice(0, 40) + "… (" + value.length + " chars)";
    return value;
  }

  function render(task, answer) {
    const width = answer.width || (state.bitmap ? state.bitmap.width : 0);
    const height = answer.height || (state.bitmap ? state.bitmap.height : 0);
    const ctx = drawPicture(width, height);
    const sizes = scale(width, height);
    clearResult();
    let summary = "";
    if (task === "classify") {
      const preds = answer.predictions || [];
      preds.forEach((p) => addLabel(p.class + " " + fixed(p.probability, 2)));
      fillTable("Top " + preds.length + " classes (" + answer.model + ")", ["#", "class", "index", "probability"],
        preds.map((p, i) => [String(i + 1), p.class, String(p.index), fixed(p.probability * 100, 1) + " %"]));
      if (preds.length) drawTag(ctx, 0, 0, preds[0].class + " " + fixed(preds[0].probability, 2), BLUE, sizes, false);
      summary = preds.length ? "Top class: " + preds[0].class : "No classes returned.";
    } else if (task === "detect") {
      const dets = answer.detections || [];
      for (const d of dets) {
        const color = colour(d.class_index || 0);
        const text = d.class + " " + fixed(d.score, 2);
        drawBox(ctx, d.box, text, color, sizes);
        addLabel(text, color, d.box);
      }
      summary = dets.length + (dets.length === 1 ? " detection" : " detections") + " (" + answer.model + ")";
    } else if (task === "faces") {
      const faces = answer.faces || [];
      for (const f of faces) {
        const text = "face " + fixed(f.score, 2);
        if (Array.isArray(f.landmarks)) drawPoints(ctx, f.landmarks, SKY, sizes);
        drawBox(ctx, f.box, text, GREEN, sizes);
        addLabel(text, GREEN, f.box);
      }
      summary = faces.length + (faces.length === 1 ? " face" : " faces");
    } else if (task === "identify") {
      const faces = answer.faces || [];
      for (const f of faces) {
        const named = typeof f.name === "string";
        const text = (named ? f.name : "unknown") + " " + fixed(f.score, 2);
        const color = named ? GREEN : ORANGE;
        drawBox(ctx, f.box, text, color, sizes);
        addLabel(text, color, f.box);
      }
      fillTable("Faces against the gallery (match distance ≤ " + fixed(answer.threshold, 2) + ")",
        ["#", "name", "distance", "nearest unmatched", "score"],
        faces.map((f, i) => [String(i + 1), f.name || "unknown", f.distance == null ? "—" : fixed(f.distance, 3),
          f.nearest_unmatched || "—", fixed(f.score, 2)]));
      const known = faces.filter((f) => typeof f.name === "string").length;
      summary = faces.length + (faces.length === 1 ? " face, " : " faces, ") + known + " named";
    } else if (task === "segment") {
      const classes = answer.classes || [];
      // Class 0 is the background: left untinted by the server, grey here.
      classes.forEach((c) => addLabel(c.class + " " + fixed(c.fraction * 100, 1) + "%", c.index > 0 ? colour(c.index - 1) : GREY));
      fillTable("Classes present (" + answer.model + ")", ["class", "index", "pixels", "area"],
        classes.map((c) => [c.class, String(c.index), Number(c.pixels).toLocaleString("en"), fixed(c.fraction * 100, 1) + " %"]));
      summary = classes.length + (classes.length === 1 ? " class present" : " classes present");
      return drawOverlay(answer.overlay_png).then(() => summary);
    }
    return Promise.resolve(summary);
  }

  // The overlay is the tinted photo with the server's legend strip below it, so it gets the
  // canvas at its own size.
  async function drawOverlay(base64) {
    if (typeof base64 !== "string" || !base64) return;
    const img = new Image();
    img.src = "data:image/png;base64," + base64;
    try {
      await img.decode();
    } catch (_) {
      throw new Error("the server's overlay is not a PNG the browser can show");
    }
    const canvas = $("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    canvas.getContext("2d").drawImage(img, 0, 0);
  }

  async function send(event) {
    if (event) event.preventDefault();
    clearError();
    if (!state.file) {
      showError("Choose a photo first.");
      return;
    }
    const task = $("task").value;
    const route = ROUTES[task];
    const params = new URLSearchParams();
    const model = $("model").value;
    if (route.pickModel && model) params.set("model", model);
    for (const name of route.fields) {
      const value = $(name).value.trim();
      if (value !== "") params.set(name, value);
    }
    const url = route.path + (params.toString() ? "?" + params.toString() : "");
    const seq = ++state.seq;
    $("send").disabled = true;
    setStatus("Running " + task + "…", "busy");
    const started = performance.now();
    try {
      const answer = await api("POST", url, photoBody(state.file));
      if (seq !== state.seq) return;
      const summary = await render(task, answer);
      $("raw").textContent = JSON.stringify(answer, abbreviate, 2);
      $("raw-wrap").hidden = false;
      $("result").dataset.task = task;
      setStatus(summary + " — " + Math.round(performance.now() - started) + " ms", "done");
    } catch (e) {
      if (seq !== state.seq) return;
      clearResult();
      // The photo alone: boxes from an earlier answer must not look like this one's.
      if (state.bitmap) drawPicture(state.bitmap.width, state.bitmap.height);
      else blankCanvas();
      showError(e.message);
      setStatus("The server refused the request.", "error");
    } finally {
      if (seq === state.seq) $("send").disabled = false;
    }
  }

  // ---- task and model pickers -----------------------------------------------------------

  function fillModels() {
    const task = $("task").value;
    const route = ROUTES[task];
    const select = $("model");
    select.replaceChildren();
    const fitting = state.models.filter((m) => m.task === route.models);
    for (const m of fitting) select.appendChild(new Option(m.name, m.name));
    if (!fitting.length) select.appendChild(new Option("none loaded for " + task, ""));
    select.disabled = !route.pickModel || fitting.length <= 1;
    for (const field of document.querySelectorAll("[data-for]")) {
      field.hidden = field.dataset.for !== task;
    }
  }

  // Open on a task the server can answer, so the first Send works.
  function pickDefaultTask() {
    const tasks = new Set(state.models.map((m) => m.task));
    const first = ["detect", "classify", "segment", "faces"].find((t) => tasks.has(t));
    if (first) $("task").value = first;
  }

  // ---- models panel ---------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function definition(term, value) {
    return [el("dt", { text: term }), el("dd", { text: value })];
  }

  function describeModel(m) {
    const facts = [];
    facts.push(...definition("task", m.task));
    facts.push(...definition("source", m.source || "—"));
    const axes = Array.isArray(m.input) ? m.input.map((d) => (d == null ? "any" : String(d))) : null;
    facts.push(...definition("input", axes ? axes.join(" × ") : "any size"));
    const classes = Array.isArray(m.classes) ? m.classes : [];
    const shown = classes.slice(0, 20).join(", ") + (classes.length > 20 ? ", … (" + classes.length + " in all)" : "");
    facts.push(...definition("classes", classes.length ? shown : "—"));
    if (m.recipe && typeof m.recipe === "object") {
      // Means and scales are float32s: 4 significant digits say them.
      const short = (_, x) => (typeof x === "number" && !Number.isInteger(x) ? Number(x.toPrecision(4)) : x);
      const recipe = Object.entries(m.recipe).map(([k, v]) => k + ": " + (typeof v === "string" ? v : JSON.stringify(v, short)));
      facts.push(...definition("recipe", recipe.join("; ")));
    }
    const parts = [el("dl", { class: "facts" }, facts)];
    if (m.summary && Array.isArray(m.summary.layers)) {
      const rows = m.summary.layers.map((l) => el("tr", {}, [
        el("td", { text: l.name }), el("td", { text: l.kind }),
        el("td", { text: Array.isArray(l.output) ? l.output.join(" × ") : String(l.output ?? "") }),
        el("td", { class: "num", text: Number(l.params || 0).toLocaleString("en") }),
      ]));
      const table = el("table", { class: "summary" }, [
        el("caption", { text: m.name + ": " + Number(m.summary.params || 0).toLocaleString("en") + " parameters" }),
        el("thead", {}, [el("tr", {}, ["layer", "kind", "output", "params"].map((h) => el("th", { scope: "col", text: h })))]),
        el("tbody", {}, rows),
      ]);
      parts.push(el("div", { class: "scroll" }, [table]));
    } else {
      parts.push(el("p", { class: "muted", text: "No layer summary for this model." }));
    }
    return el("details", { class: "model", "data-model": m.name }, [
      el("summary", {}, [el("strong", { text: m.name }), el("span", { class: "tag", text: m.task })]),
      ...parts,
    ]);
  }

  async function loadModels() {
    try {
      const answer = await api("GET", "/v1/models");
      state.models = Array.isArray(answer.models) ? answer.models : [];
      const box = $("models");
      box.replaceChildren();
      if (!state.models.length) box.appendChild(el("p", { class: "muted", text: "No models loaded (start with --model NAME=SOURCE)." }));
      for (const m of state.models) box.appendChild(describeModel(m));
    } catch (e) {
      $("models").replaceChildren(el("p", { class: "muted", text: "Could not list the models." }));
      showError(e.message);
    }
    pickDefaultTask();
    fillModels();
  }

  async function loadHealth() {
    try {
      const h = await api("GET", "/healthz");
      $("health").textContent = "server " + h.status + " · " + h.models + (h.models === 1 ? " model" : " models");
    } catch (e) {
      $("health").textContent = "server unreachable: " + e.message;
    }
  }

  // ---- gallery --------------------------------------------------------------------------

  function authHeaders() {
    const token = $("token").value.trim();
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function loadPeople() {
    const body = $("people-body");
    try {
      const answer = await api("GET", "/v1/gallery/people");
      const people = Array.isArray(answer.people) ? answer.people : [];
      body.replaceChildren();
      for (const p of people) {
        const remove = el("button", { type: "button", class: "secondary", "aria-label": "Delete " + p.name, text: "Delete" });
        remove.addEventListener("click", () => removePerson(p.name));
        body.appendChild(el("tr", { "data-person": p.name }, [
          el("td", { text: p.name }), el("td", { class: "num", text: String(p.encodings) }),
          el("td", { text: p.created_at || "" }), el("td", {}, [remove]),
        ]));
      }
      if (!people.length) body.appendChild(el("tr", {}, [el("td", { colspan: "4", class: "muted", text: "Nobody enrolled yet." })]));
    } catch (e) {
      // No gallery (the server runs without --faces) is a state, not an error of the page.
      body.replaceChildren(el("tr", {}, [el("td", { colspan: "4", class: "muted", text: "Gallery unavailable: " + e.message })]));
    }
  }

  async function enrol(event) {
    event.preventDefault();
    clearError();
    const name = $("person").value.trim();
    if (!name) return showError("Type the person's name first.");
    if (!state.file) return showError("Choose a photo of the person first.");
    const init = photoBody(state.file);
    Object.assign(init.headers, authHeaders());
    $("enrol").disabled = true;
    $("gallery-status").textContent = "Enrolling " + name + "…";
    try {
      const answer = await api("POST", "/v1/gallery/people/" + encodeURIComponent(name), init);
      $("gallery-status").textContent = "Enrolled " + answer.name + " (" + answer.encodings + " encodings).";
      $("person").value = "";
    } catch (e) {
      $("gallery-status").textContent = "";
      showError(e.message);
    } finally {
      $("enrol").disabled = false;
    }
    await loadPeople();
  }

  async function removePerson(name) {
    clearError();
    try {
      const answer = await api("DELETE", "/v1/gallery/people/" + encodeURIComponent(name), { headers: authHeaders() });
      $("gallery-status").textContent = "Removed " + answer.name + " (" + answer.removed + " encodings).";
    } catch (e) {
      showError(e.message);
    }
    await loadPeople();
  }

  // ---- wiring ---------------------------------------------------------------------------

  function wireDrop() {
    const zone = $("drop");
    const over = (on) => (event) => {
      event.preventDefault();
      zone.classList.toggle("over", on);
    };
    zone.addEventListener("dragenter", over(true));
    zone.addEventListener("dragover", over(true));
    zone.addEventListener("dragleave", over(false));
    zone.addEventListener("drop", (event) => {
      over(false)(event);
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) choosePhoto(file);
    });
    // A photo dropped outside the zone must not navigate away from the page.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
  }

  function start() {
    $("photo").addEventListener("change", (e) => choosePhoto(e.target.files[0]));
    $("task").addEventListener("change", fillModels);
    $("run-form").addEventListener("submit", send);
    $("enrol-form").addEventListener("submit", enrol);
    wireDrop();
    fillModels();
    loadHealth();
    loadModels();
    loadPeople();
  }

  start();
})();
