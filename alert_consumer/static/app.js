// i3dmtn alerts page: renders /api/state and re-renders on every Server-Sent "state" event.
// Everything in the state comes from MQTT and is untrusted: text goes in with textContent only,
// URLs are built from encodeURIComponent'd ids, and no HTML string is ever parsed.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const images = new Map(); // src -> <img>, reused across renders so snapshots do not flicker
  const panels = new Map(); // event_id -> review panel, reused so a playing clip and a typed note survive
  let session = { can_review: false, login_required: false, logged_in: false, csrf: null };
  const VERDICTS = { fight: "Fight", false_alarm: "False alarm" };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(value, digits) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "–";
  }

  function localTime(epochSeconds) {
    if (typeof epochSeconds !== "number") return "–";
    return new Date(epochSeconds * 1000).toLocaleString();
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "–";
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const m = Math.floor(Math.round(seconds) / 60);
    const s = Math.round(seconds) % 60;
    if (m < 60) return m + "m " + String(s).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }

  function image(src, alt) {
    let img = images.get(src);
    if (!img) {
      img = el("img", "thumb");
      img.alt = alt;
      img.loading = "lazy";
      img.src = src;
      images.set(src, img);
    }
    return img;
  }

  function sparkline(scores, threshold) {
    const w = 240, h = 40, pad = 2;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("preserveAspectRatio", "none");
    const y = (v) => (h - pad - Math.max(0, Math.min(1, v)) * (h - 2 * pad)).toFixed(1);
    if (typeof threshold === "number") {
      const limit = document.createElementNS(SVG_NS, "line");
      limit.setAttribute("class", "limit");
      limit.setAttribute("x1", "0");
      limit.setAttribute("x2", String(w));
      limit.setAttribute("y1", y(threshold));
      limit.setAttribute("y2", y(threshold));
      svg.appendChild(limit);
    }
    const values = scores.map((p) => Number(p[1])).filter((v) => isFinite(v));
    if (values.length > 0) {
      const step = values.length > 1 ? (w - 2 * pad) / (values.length - 1) : 0;
      const points = values.map((v, i) => (pad + i * step).toFixed(1) + "," + y(v)).join(" ");
      const line = document.createElementNS(SVG_NS, "polyline");
      line.setAttribute("class", "line");
      line.setAttribute("points", values.length > 1 ? points : points + " " + (w - pad) + "," + y(values[0]));
      svg.appendChild(line);
    }
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = values.length + " recent scores" + (values.length ? ", last " + num(values[values.length - 1], 2) : "");
    svg.appendChild(title);
    return svg;
  }

  function thresholdFor(state, deviceId, camera) {
    const all = state.open_events.concat(state.recent_events);
    const hit = all.find((e) => e.device_id === deviceId && e.camera === camera);
    return hit ? hit.threshold : undefined;
  }

  function deviceCard(state, device) {
    const card = el("article", "card device");
    card.dataset.deviceId = device.device_id;
    const head = el("div", "card-head");
    head.appendChild(el("span", "card-title", device.device_id));
    const status = ["online", "offline", "degraded"].includes(device.status) ? device.status : "unknown";
    const badge = el("span", "badge badge-" + status, status);
    badge.dataset.role = "status";
    head.appendChild(badge);
    card.appendChild(head);

    const stats = el("div", "stats");
    for (const [key, value] of Object.entries(device.stats || {})) {
      const item = el("span", null, key + " ");
      item.appendChild(el("b", null, typeof value === "number" ? num(value, Number.isInteger(value) ? 0 : 2) : value));
      stats.appendChild(item);
    }
    if (stats.childNodes.length) card.appendChild(stats);

    for (const cam of device.cameras) {
      const row = el("div", "camera");
      row.appendChild(el("span", "camera-name", cam.camera));
      row.appendChild(sparkline(cam.scores, thresholdFor(state, device.device_id, cam.camera)));
      if (cam.snapshot_version !== null) {
        const src = "/snapshot/" + encodeURIComponent(device.device_id) + "/" +
          encodeURIComponent(cam.camera) + ".jpg?v=" + encodeURIComponent(cam.snapshot_version);
        row.appendChild(image(src, "latest frame of " + cam.camera));
      }
      card.appendChild(row);
    }
    return card;
  }

  function eventCard(event) {
    const card = el("article", "card event " + (event.state === "ended" ? "ended" : "open"));
    card.dataset.eventId = event.event_id;
    card.dataset.state = event.state;
    if (event.snapshot) {
      card.appendChild(image("/event-snapshot/" + encodeURIComponent(event.event_id) + ".jpg", "frame near the start"));
    }
    const body = el("div", "event-body");
    const head = el("div", "card-head");
    head.appendChild(el("span", "card-title", event.device_id + "/" + event.camera));
    head.appendChild(el("span", "badge badge-" + (event.state === "ended" ? "ended" : "open"),
      event.state === "ended" ? "ended" : "OPEN"));
    body.appendChild(head);
    const score = el("div", "event-score",
      "peak " + num(event.peak_score, 2) + " · score " + num(event.score, 2) + " · threshold " + num(event.threshold, 2));
    body.appendChild(score);
    const when = event.state === "ended"
      ? "started " + localTime(event.started_at) + " · lasted " + duration(event.duration)
      : "started " + localTime(event.started_at) + (event.duration > 0 ? " · for " + duration(event.duration) : "");
    body.appendChild(el("div", "event-meta", when));
    body.appendChild(el("div", "event-meta", "event " + event.event_id));
    card.appendChild(body);
    if (event.state === "ended") card.appendChild(reviewPanel(event));
    return card;
  }

  // -- review: the clip, the score timeline, the verdict ------------------------------------------------
  function reviewPanel(event) {
    let panel = panels.get(event.event_id);
    if (!panel) {
      panel = { root: el("div", "review"), media: el("div", "review-media"), timeline: el("div", "timeline") };
      panel.status = el("div", "review-status");
      panel.status.dataset.role = "review-status";
      panel.note = el("input", "review-note");
      panel.note.type = "text";
      panel.note.maxLength = 500;
      panel.note.placeholder = "note (optional)";
      panel.note.dataset.role = "review-note";
      const buttons = el("div", "review-buttons");
      for (const [verdict, label] of Object.entries(VERDICTS)) {
        const button = el("button", "verdict verdict-" + verdict, label);
        button.type = "button";
        button.dataset.verdict = verdict;
        button.addEventListener("click", () => submitReview(event.event_id, verdict, panel));
        buttons.appendChild(button);
      }
      panel.message = el("div", "review-message");
      panel.message.dataset.role = "review-message";
      panel.form = el("div", "review-form");
      panel.form.append(panel.note, buttons, panel.message);
      panel.root.append(panel.media, panel.timeline, panel.status, panel.form);
      panels.set(event.event_id, panel);
    }
    if (event.clip && event.clip.url && !panel.video) {
      panel.video = el("video", "clip");
      panel.video.controls = true;
      panel.video.muted = true;
      panel.video.preload = "metadata";
      panel.video.src = event.clip.url;
      panel.media.replaceChildren(panel.video);
    } else if (!panel.video) {
      panel.media.replaceChildren(el("span", "event-meta", "no clip saved by this watcher"));
    }
    panel.timeline.replaceChildren(sparkline(event.timeline || [], event.threshold));
    const review = event.review;
    panel.status.textContent = review
      ? "reviewed: " + (VERDICTS[review.verdict] || review.verdict) + " by " + review.reviewer + " · " +
        localTime(review.reviewed_at) + (review.note ? " · “" + review.note + "”" : "")
      : "not reviewed";
    panel.status.dataset.verdict = review ? review.verdict : "";
    panel.form.classList.toggle("hidden", !session.can_review);
    return panel.root;
  }

  function submitReview(eventId, verdict, panel) {
    panel.message.textContent = "saving…";
    fetch("/api/reviews", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" },
      body: JSON.stringify({ event_id: eventId, verdict: verdict, note: panel.note.value }),
    }).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error(body.error || "HTTP " + r.status);
      panel.message.textContent = "saved";
      panel.note.value = "";
    })).catch((err) => { panel.message.textContent = "refused: " + err.message; });
  }

  // -- session and login --------------------------------------------------------------------------------
  function showSession(info) {
    session = info;
    const login = document.getElementById("login");
    login.classList.toggle("hidden", !(info.can_review && info.login_required && !info.logged_in));
    const who = document.getElementById("who");
    who.textContent = !info.can_review ? "view only" : info.logged_in ? "can review" : "log in to review";
    who.title = info.read_only_reason || "";
    for (const panel of panels.values()) panel.form.classList.toggle("hidden", !info.can_review);
  }

  function logIn(submitEvent) {
    submitEvent.preventDefault();
    const password = document.getElementById("password");
    const message = document.getElementById("login-message");
    fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: password.value }),
    }).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error(body.error || "HTTP " + r.status);
      password.value = "";
      message.textContent = "";
      showSession(body);
    })).catch((err) => { message.textContent = err.message; });
  }

  function fill(containerId, emptyId, nodes) {
    const container = document.getElementById(containerId);
    container.replaceChildren(...nodes);
    document.getElementById(emptyId).classList.toggle("hidden", nodes.length > 0);
  }

  function render(state) {
    document.getElementById("prefix").textContent = state.prefix ? "topic " + state.prefix + "/…" : "";
    const openCount = document.getElementById("open-count");
    openCount.textContent = state.open_events.length + " open";
    openCount.classList.toggle("active", state.open_events.length > 0);
    document.getElementById("device-count").textContent =
      state.devices.length + (state.devices.length === 1 ? " device" : " devices");
    fill("open-events", "open-empty", state.open_events.map(eventCard));
    fill("devices", "devices-empty", state.devices.map((d) => deviceCard(state, d)));
    fill("recent-events", "recent-empty", state.recent_events.map(eventCard));
    const used = new Set(Array.from(document.querySelectorAll("img.thumb"), (img) => img.getAttribute("src")));
    for (const src of Array.from(images.keys())) if (!used.has(src)) images.delete(src);
    const shown = new Set(state.recent_events.map((e) => e.event_id));
    for (const id of Array.from(panels.keys())) if (!shown.has(id)) panels.delete(id);
  }

  function connection(up) {
    const node = document.getElementById("connection");
    node.textContent = up ? "live" : "reconnecting…";
    node.className = "conn " + (up ? "conn-up" : "conn-down");
  }

  function start() {
    document.getElementById("login").addEventListener("submit", logIn);
    fetch("/api/session", { credentials: "same-origin" }).then((r) => r.json()).then(showSession)
      .catch(() => showSession(session));
    // The stream sends the whole state as soon as it connects; this fetch only fills the page sooner. Its
    // answer can arrive after the stream's newer state, so it renders only while nothing has been streamed.
    let streamed = false;
    fetch("/api/state").then((r) => r.json()).then((state) => { if (!streamed) render(state); })
      .catch(() => connection(false));
    const source = new EventSource("/events/stream");
    source.addEventListener("open", () => connection(true));
    source.addEventListener("error", () => connection(false)); // EventSource reconnects by itself
    source.addEventListener("state", (message) => {
      streamed = true;
      connection(true);
      try {
        render(JSON.parse(message.data));
      } catch (err) {
        console.error("bad state message", err);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
