// newswire search page: vanilla JS, no build step.
//
// Contract: every filter lives in the URL (q, actor, location, source, language, since, until,
// sort, after, page); the page reads the URL, asks /search, and draws results, facets, a date
// histogram and a map. Navigating pushes a new URL, so links are shareable and Back works.
// Article data is only ever written with textContent / attributes checked here: never innerHTML.
// Highlights (<mark>...</mark> in the API's snippets) are split on the two tags and rebuilt as nodes.
"use strict";

(() => {
  const PAGE_SIZE = 20;
  const LIST_KEYS = ["actor", "location", "source", "language"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MAP_W = 960;
  const MAP_H = 400;
  const MAP_TOP_LAT = 84; // the map shows 84N .. 66S (Antarctica is left out)
  const DEG = MAP_W / 360;

  const $ = (id) => document.getElementById(id);
  const labels = new Map(); // entity id -> canonical name (places are filtered by id)

  // ---- state <-> URL --------------------------------------------------------------------------
  function readState() {
    const p = new URLSearchParams(location.search);
    const s = { q: p.get("q") || "", since: p.get("since") || "", until: p.get("until") || "",
      sort: p.get("sort") === "date" ? "date" : "relevance", after: p.get("after") || "",
      page: Math.max(1, parseInt(p.get("page") || "1", 10) || 1) };
    for (const k of LIST_KEYS) s[k] = p.getAll(k).filter(Boolean);
    return s;
  }

  function toParams(s, withPaging) {
    const p = new URLSearchParams();
    if (s.q) p.set("q", s.q);
    for (const k of LIST_KEYS) for (const v of s[k]) p.append(k, v);
    if (s.since) p.set("since", s.since);
    if (s.until) p.set("until", s.until);
    if (s.sort !== "relevance") p.set("sort", s.sort);
    if (withPaging && s.after) { p.set("after", s.after); p.set("page", String(s.page)); }
    return p;
  }

  function navigate(s, keepPaging = false) {
    if (!keepPaging) { s.after = ""; s.page = 1; }
    const qs = toParams(s, true).toString();
    // a page reached with "Next" remembers it, so "Previous" can go back in history to the page before
    history.pushState(keepPaging ? { fromNext: true } : null, "", qs ? `?${qs}` : location.pathname);
    run();
  }

  function addFilter(kind, value, label) {
    const s = readState();
    if (label) labels.set(value, label);
    if (!s[kind].includes(value)) s[kind].push(value);
    navigate(s);
  }

  function removeFilter(kind, value) {
    const s = readState();
    if (LIST_KEYS.includes(kind)) s[kind] = s[kind].filter((v) => v !== value);
    else s[kind] = "";
    navigate(s);
  }

  // ---- small DOM helpers ----------------------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  // A link only for http(s) URLs: a feed's "javascript:" or "data:" URL becomes plain text.
  function safeHref(url) {
    if (typeof url !== "string") return null;
    try {
      const u = new URL(url, location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(url, text, cls) {
    const href = safeHref(url);
    if (!href) return el("span", { class: cls || "", text });
    return el("a", { href, text, class: cls || "", rel: "noopener noreferrer nofollow", target: "_blank" });
  }

  const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'" };

  // "a <mark>b</mark> c" -> text, <mark>text</mark>, text. Any other markup stays literal text.
  function highlighted(snippet) {
    const frag = document.createDocumentFragment();
    const decode = (t) => t.replace(/&(?:amp|lt|gt|quot|#39|#x27);/g, (m) => ENTITIES[m]);
    const parts = String(snippet).split(/(<mark>|<\/mark>)/);
    let inMark = false;
    for (const part of parts) {
      if (part === "<mark>") inMark = true;
      else if (part === "</mark>") inMark = false;
      else if (part) frag.append(inMark ? el("mark", { text: decode(part) }) : document.createTextNode(decode(part)));
    }
    return frag;
  }

  function formatDate(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function sourceName(src) {
    if (src && typeof src === "object") return String(src.name || src.domain || "");
    return src ? String(src) : "";
  }

  // ---- API ------------------------------------------------------------------------------------
  let searchSeq = 0;

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) {
      const detail = body && body.detail;
      const msg = typeof detail === "string" ? detail
        : Array.isArray(detail) ? detail.map((d) => d.msg || JSON.stringify(d)).join("; ")
          : `the server answered ${r.status}`;
      throw new Error(msg);
    }
    return body;
  }

  async function learnLabels(ids) {
    const missing = ids.filter((id) => !labels.has(id));
    if (!missing.length) return [];
    const p = new URLSearchParams();
    for (const id of missing) p.append("id", id);
    try {
      const { entities } = await getJSON(`/entities?${p}`);
      for (const e of entities) labels.set(e.id, e.name);
      return entities;
    } catch (_) {
      return [];
    }
  }

  // ---- rendering --------------------------------------------------------------------------------
  function syncForm(s) {
    $("q").value = s.q;
    $("since").value = /^\d{4}-\d{2}-\d{2}$/.test(s.since) ? s.since : "";
    $("until").value = /^\d{4}-\d{2}-\d{2}$/.test(s.until) ? s.until : "";
    $("sort").value = s.sort;
  }

  function renderActive(s) {
    const box = $("active");
    box.replaceChildren();
    const chip = (kind, value, text) => el("button", {
      type: "button", class: `chip active ${kind}`, title: `Remove this ${kind} filter`,
      "data-kind": kind, "data-value": value, onclick: () => removeFilter(kind, value),
    }, el("span", { class: "chip-kind", text: { location: "place", since: "from" }[kind] || kind }),
    document.createTextNode(` ${text} `), el("span", { class: "x", "aria-hidden": "true", text: "×" }));
    for (const k of LIST_KEYS) for (const v of s[k]) box.append(chip(k, v, k === "location" ? labels.get(v) || v : v));
    if (s.since) box.append(chip("since", s.since, s.since));
    if (s.until) box.append(chip("until", s.until, s.until));
    if (box.childElementCount > 1) {
      box.append(el("button", { type: "button", class: "clear", text: "Clear all",
        onclick: () => navigate({ q: readState().q, actor: [], location: [], source: [], language: [],
          since: "", until: "", sort: readState().sort }) }));
    }
  }

  function entityChips(hit) {
    const wrap = el("div", { class: "chips" });
    const byCount = (a, b) => (b.count || 0) - (a.count || 0);
    const actors = (Array.isArray(hit.actors) ? hit.actors : []).filter((a) => a && a.name).sort(byCount).slice(0, 6);
    const places = (Array.isArray(hit.locations) ? hit.locations : []).filter((l) => l && l.id).sort(byCount).slice(0, 6);
    for (const a of actors) {
      wrap.append(el("button", { type: "button", class: "chip actor", title: `Filter by actor ${a.name}`,
        "data-id": String(a.id || ""), text: String(a.name), onclick: () => addFilter("actor", String(a.name)) }));
    }
    for (const l of places) {
      const name = String(l.name || l.id);
      labels.set(String(l.id), name);
      wrap.append(el("button", { type: "button", class: "chip location", title: `Filter by place ${name}`,
        "data-id": String(l.id), text: name, onclick: () => addFilter("location", String(l.id), name) }));
    }
    return wrap.childElementCount ? wrap : null;
  }

  function alsoPublished(hit) {
    const also = Array.isArray(hit.also_published_by) ? hit.also_published_by : [];
    if (!also.length) return null;
    const list = el("ul", { class: "also-list" });
    for (const a of also) {
      const when = formatDate(a.published_at);
      list.append(el("li", {}, link(a.url, sourceName(a.source) || a.url || "(no link)"),
        when ? el("span", { class: "muted", text: ` · ${when}` }) : null));
    }
    const n = also.length;
    return el("details", { class: "also" },
      el("summary", { text: `also published by ${n} outlet${n === 1 ? "" : "s"}` }), list);
  }

  function renderHit(hit) {
    const title = String(hit.title || hit.url || "(untitled)");
    const meta = el("div", { class: "meta" });
    const src = sourceName(hit.source);
    if (src) meta.append(el("span", { class: "source", text: src }));
    const when = formatDate(hit.published_at);
    if (when) {
      meta.append(el("time", { datetime: String(hit.published_at), text: when }));
      if (hit.published_at_estimated) {
        meta.append(el("span", { class: "estimated", title: "The feed gave no date: this is when it was fetched",
          text: "estimated date" }));
      }
    } else {
      meta.append(el("span", { class: "estimated", text: "undated" }));
    }
    if (hit.language) meta.append(el("span", { class: "lang", text: String(hit.language) }));
    const snippet = el("p", { class: "snippet" });
    const hl = Array.isArray(hit._highlight) ? hit._highlight.filter((h) => typeof h === "string") : [];
    // the API lists title, summary and body snippets that matched: show the body's (most context), else any
    const body = hl.slice(1).reverse().find((h) => h.includes("<mark>")) || hl[0];
    if (body) snippet.append(highlighted(body));
    else {
      const text = String(hit.summary || hit.text || "");
      snippet.textContent = text.length > 280 ? `${text.slice(0, 280)}…` : text;
    }
    return el("li", { class: "hit", "data-id": String(hit.id || "") },
      el("h3", {}, link(hit.url, title, "title")), meta, snippet, alsoPublished(hit), entityChips(hit));
  }

  function renderFacet(listId, buckets, onPick) {
    const ul = $(listId);
    ul.replaceChildren();
    const max = Math.max(1, ...buckets.map((b) => b.count || 0));
    for (const b of buckets) {
      const name = String(b.name || b.key);
      const bar = el("span", { class: "bar" });
      bar.style.width = `${Math.round((100 * (b.count || 0)) / max)}%`;
      ul.append(el("li", {}, el("button", { type: "button", class: "facet-item", title: `Filter by ${name}`,
        "data-key": String(b.key), onclick: () => onPick(b, name) },
      el("span", { class: "facet-name", text: name }), el("span", { class: "count", text: String(b.count) }), bar)));
    }
    if (!buckets.length) ul.append(el("li", { class: "muted", text: "none" }));
  }

  // Counts per day from the store's date facet, drawn per day, per week (Monday) or per month when the
  // dates span more than 120 days or 2 years; a click narrows the dates to that bar.
  function renderHistogram(dates) {
    const box = $("histogram");
    box.replaceChildren();
    const days = (dates || []).filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d.key));
    if (!days.length) { $("histogram-range").textContent = "no dated stories"; return; }
    const dayMs = 86400000;
    const first = Date.parse(`${days[0].key}T00:00:00Z`);
    const last = Date.parse(`${days[days.length - 1].key}T00:00:00Z`);
    const spanDays = Math.round((last - first) / dayMs) + 1;
    const unit = spanDays <= 120 ? "day" : spanDays <= 730 ? "week" : "month";
    const iso = (ms) => new Date(ms).toISOString().slice(0, 10);
    const startOf = (ms) => {
      const d = new Date(ms);
      if (unit === "week") return ms - ((d.getUTCDay() + 6) % 7) * dayMs;
      if (unit === "month") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
      return ms;
    };
    const next = (ms) => {
      if (unit === "week") return ms + 7 * dayMs;
      if (unit === "month") { const d = new Date(ms); return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1); }
      return ms + dayMs;
    };
    const counts = new Map();
    for (const d of days) {
      const k = startOf(Date.parse(`${d.key}T00:00:00Z`));
      counts.set(k, (counts.get(k) || 0) + d.count);
    }
    const bars = [];
    for (let ms = startOf(first); ms <= last; ms = next(ms)) bars.push(ms);
    const max = Math.max(1, ...counts.values());
    const w = 300 / Math.max(bars.length, 10); // a few bars stay bar-shaped
    bars.forEach((ms, i) => {
      const c = counts.get(ms) || 0;
      const h = c ? Math.max(2, (76 * c) / max) : 0;
      const from = iso(ms);
      const until = iso(next(ms) - dayMs);
      const rect = svg("rect", { x: i * w + w * 0.1, y: 80 - h, width: Math.max(w * 0.8, 0.5), height: h,
        class: "day", "data-day": from });
      const tip = svg("title");
      tip.textContent = `${unit === "day" ? from : `${from} – ${until}`}: ${c} ${c === 1 ? "story" : "stories"}`;
      rect.append(tip);
      if (c) rect.addEventListener("click", () => { const s = readState(); s.since = from; s.until = until; navigate(s); });
      box.append(rect);
    });
    $("histogram-range").textContent = `${days[0].key} – ${days[days.length - 1].key} · per ${unit} · click a bar`;
  }

  // ---- the map ------------------------------------------------------------------------------
  let mapReady = null;

  const project = (lon, lat) => [(lon + 180) * DEG, (MAP_TOP_LAT - lat) * DEG];

  // TopoJSON (https://github.com/topojson/topojson-specification): quantized, delta-encoded arcs
  // shared by polygons; a negative arc index ~i means arc i reversed.
  function topoPaths(topo, objectName) {
    const [sx, sy] = topo.transform.scale;
    const [tx, ty] = topo.transform.translate;
    const arcs = topo.arcs.map((arc) => {
      let x = 0;
      let y = 0;
      return arc.map(([dx, dy]) => { x += dx; y += dy; return [x * sx + tx, y * sy + ty]; });
    });
    const ring = (indices) => {
      const pts = [];
      for (const i of indices) {
        const a = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
        pts.push(...(pts.length ? a.slice(1) : a));
      }
      let d = "";
      let prevLon = null;
      for (const [lon, lat] of pts) {
        const [x, y] = project(lon, lat);
        // a jump across the antimeridian starts a new subpath instead of a line across the map
        d += `${prevLon === null || Math.abs(lon - prevLon) > 180 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
        prevLon = lon;
      }
      return `${d}Z`;
    };
    const out = [];
    for (const g of topo.objects[objectName].geometries) {
      if (g.id === "010") continue; // Antarctica: below the map
      const polys = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : [];
      out.push({ name: (g.properties && g.properties.name) || "", d: polys.map((p) => p.map(ring).join("")).join("") });
    }
    return out;
  }

  function loadMap() {
    if (!mapReady) {
      mapReady = getJSON("/static/vendor/world-atlas/countries-110m.json").then((topo) => {
        const g = $("countries");
        for (const c of topoPaths(topo, "countries")) {
          const path = svg("path", { d: c.d, class: "country" });
          const tip = svg("title");
          tip.textContent = c.name;
          path.append(tip);
          g.append(path);
        }
      }).catch(() => { $("map").classList.add("no-outlines"); });
    }
    return mapReady;
  }

  async function renderMap(buckets, hits, seq) {
    const coords = new Map();
    for (const h of hits) {
      for (const l of Array.isArray(h.locations) ? h.locations : []) {
        if (l && l.id && Number.isFinite(l.lat) && Number.isFinite(l.lon)) coords.set(String(l.id), [l.lon, l.lat]);
      }
    }
    drawPoints(buckets, coords);
    const unknown = buckets.map((b) => String(b.key)).filter((k) => !coords.has(k));
    if (!unknown.length) return;
    const p = new URLSearchParams();
    for (const id of unknown) p.append("id", id);
    try {
      const { entities } = await getJSON(`/entities?${p}`);
      for (const e of entities) if (Number.isFinite(e.lat) && Number.isFinite(e.lon)) coords.set(e.id, [e.lon, e.lat]);
    } catch (_) {
      return; // points without coordinates are left out
    }
    if (seq === searchSeq) drawPoints(buckets, coords);
  }

  let lastPoints = null;

  function drawPoints(buckets, coords) {
    lastPoints = [buckets, coords];
    const points = $("points");
    points.replaceChildren();
    const placed = buckets.filter((b) => coords.has(String(b.key)));
    const max = Math.max(1, ...placed.map((b) => b.count || 0));
    const shown = fitMap(placed.map((b) => project(...coords.get(String(b.key)))));
    const unit = shown / Math.max(1, $("map").getBoundingClientRect().width); // map units per screen pixel
    // big points first so that small ones stay clickable on top; radii in screen terms at any zoom
    for (const b of placed.slice().sort((a, c) => (c.count || 0) - (a.count || 0))) {
      const [x, y] = project(...coords.get(String(b.key)));
      const name = String(b.name || b.key);
      const r = (4 + 12 * Math.sqrt((b.count || 0) / max)) * unit; // 4-16 px on screen
      const dot = svg("circle", { cx: x.toFixed(2), cy: y.toFixed(2), r: r.toFixed(2), class: "point",
        "data-id": String(b.key), "data-count": String(b.count), tabindex: "0", role: "button" });
      const tip = svg("title");
      tip.textContent = `${name}: ${b.count} ${b.count === 1 ? "story" : "stories"}`;
      dot.append(tip);
      const pick = () => addFilter("location", String(b.key), name);
      dot.addEventListener("click", pick);
      dot.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); } });
      points.append(dot);
    }
  }

  // Zoom to the points (at least a 40-degree-wide window, 12:5 like the whole map), or the world;
  // returns the width shown, in map units.
  function fitMap(xy) {
    const map = $("map");
    if (!xy.length) { map.setAttribute("viewBox", `0 0 ${MAP_W} ${MAP_H}`); return MAP_W; }
    const xs = xy.map((p) => p[0]);
    const ys = xy.map((p) => p[1]);
    const pad = 12 * DEG;
    let x0 = Math.min(...xs) - pad;
    let x1 = Math.max(...xs) + pad;
    let y0 = Math.min(...ys) - pad;
    let y1 = Math.max(...ys) + pad;
    let w = Math.max(x1 - x0, 40 * DEG, ((y1 - y0) * MAP_W) / MAP_H);
    w = Math.min(w, MAP_W);
    const h = (w * MAP_H) / MAP_W;
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    x0 = Math.min(Math.max(cx - w / 2, 0), MAP_W - w);
    y0 = Math.min(Math.max(cy - h / 2, 0), MAP_H - h);
    x1 = x0 + w;
    y1 = y0 + h;
    map.setAttribute("viewBox", `${x0.toFixed(1)} ${y0.toFixed(1)} ${w.toFixed(1)} ${h.toFixed(1)}`);
    return w;
  }

  // ---- search -------------------------------------------------------------------------------
  async function run() {
    const s = readState();
    syncForm(s);
    const seq = ++searchSeq;
    const placeIds = s.location.filter((v) => v.startsWith("geonames:"));
    if (placeIds.some((id) => !labels.has(id))) await learnLabels(placeIds);
    renderActive(s);
    const p = toParams(s, true);
    p.delete("page");
    p.set("limit", String(PAGE_SIZE));
    $("error").hidden = true;
    document.body.classList.add("loading");
    let data;
    try {
      data = await getJSON(`/search?${p}`);
    } catch (err) {
      if (seq !== searchSeq) return;
      document.body.classList.remove("loading");
      $("error").textContent = String(err.message || err);
      $("error").hidden = false;
      $("summary").textContent = "";
      $("hits").replaceChildren();
      $("next").hidden = true;
      $("prev").hidden = s.page <= 1;
      return;
    }
    if (seq !== searchSeq) return; // a newer search started meanwhile
    document.body.classList.remove("loading");
    const hits = Array.isArray(data.hits) ? data.hits : [];
    const facets = data.facets || {};
    for (const b of facets.locations || []) labels.set(String(b.key), String(b.name || b.key));
    renderActive(s);
    const total = Number(data.total) || 0;
    const from = (s.page - 1) * PAGE_SIZE + 1;
    $("summary").textContent = total === 0 ? "No stories match."
      : `${total} ${total === 1 ? "story" : "stories"}` + (total > hits.length ? ` · ${from}–${from + hits.length - 1} shown` : "");
    $("hits").replaceChildren(...hits.map(renderHit));
    $("next").hidden = !data.next_after;
    $("next").dataset.after = data.next_after || "";
    $("prev").hidden = s.page <= 1;
    $("page-no").textContent = total > PAGE_SIZE ? `page ${s.page} of ${Math.ceil(total / PAGE_SIZE)}` : "";
    renderFacet("facet-actors", facets.actors || [], (b, name) => addFilter("actor", name));
    renderFacet("facet-locations", facets.locations || [], (b, name) => addFilter("location", String(b.key), name));
    renderFacet("facet-sources", facets.sources || [], (b) => addFilter("source", String(b.key)));
    const opts = $("source-options");
    opts.replaceChildren(...(facets.sources || []).map((b) => el("option", { value: String(b.key) })));
    renderHistogram(facets.dates || []);
    await loadMap();
    if (seq === searchSeq) await renderMap(facets.locations || [], hits, seq);
    document.body.dataset.ready = String(seq); // tests wait for this
  }

  // ---- type-ahead -----------------------------------------------------------------------------
  function combo(box) {
    const kind = box.dataset.kind;
    const input = box.querySelector("input");
    const list = box.querySelector("ul");
    let items = [];
    let shownFor = ""; // the text the shown suggestions answer
    let active = -1;
    let timer = null;
    let seq = 0;

    const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); active = -1; };
    const choose = (item) => {
      input.value = "";
      close();
      if (kind === "location") addFilter("location", item.id, item.name);
      else addFilter("actor", item.name);
    };
    const mark = () => {
      [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
      if (active >= 0) input.setAttribute("aria-activedescendant", list.children[active].id);
      else input.removeAttribute("aria-activedescendant");
    };
    const show = () => {
      list.replaceChildren(...items.map((item, i) => {
        const li = el("li", { id: `${kind}-opt-${i}`, role: "option", class: "suggestion", "data-id": item.id },
          el("span", { class: "s-name", text: item.name }),
          el("span", { class: "s-meta", text: [item.kind, item.country_code].filter(Boolean).join(" · ") }));
        li.addEventListener("mousedown", (ev) => { ev.preventDefault(); choose(item); });
        return li;
      }));
      active = items.length ? 0 : -1;
      mark();
      list.hidden = !items.length;
      input.setAttribute("aria-expanded", String(items.length > 0));
    };
    const fetchSuggestions = async () => {
      const prefix = input.value.trim();
      const mine = ++seq;
      if (!prefix) { items = []; show(); return; }
      try {
        const { suggestions } = await getJSON(`/suggest?${new URLSearchParams({ kind, prefix, limit: "8" })}`);
        if (mine === seq) { items = suggestions; shownFor = prefix; show(); }
      } catch (_) { if (mine === seq) { items = []; show(); } }
    };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(fetchSuggestions, 120); });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowDown" && items.length) { ev.preventDefault(); active = (active + 1) % items.length; mark(); }
      else if (ev.key === "ArrowUp" && items.length) { ev.preventDefault(); active = (active - 1 + items.length) % items.length; mark(); }
      else if (ev.key === "Escape") close();
      else if (ev.key === "Enter") {
        ev.preventDefault();
        // suggestions for what is typed now: take the highlighted one; else the text as typed (the server
        // resolves any spelling the gazetteer knows)
        if (!list.hidden && active >= 0 && shownFor === input.value.trim()) choose(items[active]);
        else if (input.value.trim()) { const v = input.value.trim(); input.value = ""; close(); addFilter(kind, v); }
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 100));
  }

  function textFilter(inputId, kind) {
    const input = $(inputId);
    const commit = () => { const v = input.value.trim(); if (v) { input.value = ""; addFilter(kind, v); } };
    input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); commit(); } });
    input.addEventListener("change", commit);
  }

  // ---- wiring -----------------------------------------------------------------------------------
  function init() {
    document.querySelectorAll(".combo").forEach(combo);
    textFilter("source-input", "source");
    $("more").addEventListener("click", () => {
      const open = $("search-form").classList.toggle("show-more");
      $("more").setAttribute("aria-expanded", String(open));
      $("more").textContent = open ? "Fewer filters" : "More filters";
    });
    textFilter("language-input", "language");
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const s = readState();
      s.q = $("q").value.trim();
      // names typed but not yet added count too (the server resolves any spelling)
      for (const [id, kind] of [["actor-input", "actor"], ["location-input", "location"], ["source-input", "source"],
        ["language-input", "language"]]) {
        const v = $(id).value.trim();
        if (v && !s[kind].includes(v)) s[kind].push(v);
        $(id).value = "";
      }
      navigate(s);
    });
    for (const id of ["since", "until"]) {
      $(id).addEventListener("change", () => { const s = readState(); s[id] = $(id).value; navigate(s); });
    }
    $("sort").addEventListener("change", () => { const s = readState(); s.sort = $("sort").value; navigate(s); });
    $("next").addEventListener("click", () => {
      const s = readState();
      s.after = $("next").dataset.after;
      s.page += 1;
      navigate(s, true);
      window.scrollTo(0, 0);
    });
    $("prev").addEventListener("click", () => {
      if (history.state && history.state.fromPage) history.back();
      else { const s = readState(); navigate(s); }
    });
    window.addEventListener("popstate", run);
    let resizeTimer = null;
    window.addEventListener("resize", () => {  // point radii are in screen pixels
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (lastPoints) drawPoints(...lastPoints); }, 150);
    });
    run();
  }

  init();
})();
