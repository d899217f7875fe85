// The browsable API page: reads /api/v1/openapi.json and shows every operation with
// its parameters, request and response schemas, and a form to call it. Built with
// DOM calls only (no inline code, no external assets), as the page's CSP requires.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];
let spec = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// "#/components/schemas/Stats" -> [name, schema]
function resolve(schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return [name, spec.components.schemas[name] || {}];
  }
  return [null, schema || {}];
}

// A short type: string, integer, "a" | "b", Stats, [Reflector], ...
function typeName(schema) {
  const [name, s] = resolve(schema);
  if (name) return name;
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  for (const key of ["oneOf", "anyOf"]) {
    if (s[key]) return s[key].map(typeName).join(" | ");
  }
  const types = [].concat(s.type || (s.properties ? "object" : "any"));
  return types
    .map((t) => (t === "array" ? `[${typeName(s.items)}]` : t === "object" && s.additionalProperties && !s.properties ? `{string: ${typeName(s.additionalProperties)}}` : t))
    .join(" | ");
}

// The schema's fields as a nested list, down to `depth` levels of named schemas.
function schemaTree(schema, depth = 3, seen = new Set()) {
  const [name, s] = resolve(schema);
  const inner = s.items ? resolve(s.items) : [null, null];
  const target = s.properties ? s : inner[1] && inner[1].properties ? inner[1] : null;
  const label = name || inner[0];
  if (!target || depth === 0 || (label && seen.has(label))) return null;
  const next = new Set(seen);
  if (label) next.add(label);
  const required = new Set(target.required || []);
  const list = el("ul", { class: "schema" });
  for (const [field, sub] of Object.entries(target.properties)) {
    const [, resolved] = resolve(sub);
    list.append(
      el(
        "li",
        {},
        el("span", { class: "name" }, field),
        required.has(field) ? "" : "?",
        ": ",
        el("span", { class: "type" }, typeName(sub)),
        sub.description || resolved.description ? el("span", { class: "desc" }, ` — ${sub.description || resolved.description}`) : null,
        schemaTree(sub, depth - 1, next),
      ),
    );
  }
  return list;
}

function contentSchema(content) {
  const [type, media] = Object.entries(content || {})[0] || [];
  return type ? [type, media.schema] : [null, null];
}

function tryForm(method, path, op) {
  const form = el("form");
  const params = op.parameters || [];
  for (const p of params) {
    form.append(el("div", { class: "field" }, el("label", {}, `${p.name} (${p.in}${p.required ? ", required" : ""})`, el("input", { name: `param-${p.name}`, "data-in": p.in }))));
  }
  let body = null;
  if (op.requestBody) {
    body = el("textarea", { name: "body", spellcheck: "false" });
    body.value = "{}";
    form.append(el("label", {}, "Body (JSON)", body));
  }
  const result = el("pre", { class: "result", hidden: "" });
  form.append(el("button", { type: "submit" }, "Send"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const p of params) {
      const value = form.elements[`param-${p.name}`].value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (value !== "") query.set(p.name, value);
    }
    if ([...query].length) url += `?${query}`;
    const headers = {};
    const token = document.getElementById("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method: method.toUpperCase(), headers };
    if (body && body.value.trim()) {
      headers["Content-Type"] = "application/json";
      init.body = body.value;
    }
    result.hidden = false;
    result.textContent = `${init.method} ${url} …`;
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch (_) {
        // not JSON: shown as it came
      }
      result.textContent = `${response.status} ${response.statusText}\n\n${shown.slice(0, 20000)}`;
    } catch (error) {
      result.textContent = `request failed: ${error}`;
    }
  });
  return form;
}

function operation(method, path, op) {
  const locked = op.security && op.security.length ? el("span", { class: "lock" }, " (needs the token)") : null;
  const summary = el("summary", {}, el("span", { class: `method ${method}` }, method), " ", el("span", { class: "path" }, path), " — ", op.summary || "", locked);
  const body = el("div", { class: "op-body" });
  if (op.description) body.append(el("p", {}, op.description));
  if (op.requestBody) {
    const [type, schema] = contentSchema(op.requestBody.content);
    body.append(el("h4", {}, `Request body (${type}): `, el("span", { class: "type" }, typeName(schema))));
    if (op.requestBody.description) body.append(el("p", { class: "desc" }, op.requestBody.description));
    body.append(schemaTree(schema) || "");
  }
  const responses = el("ul", { class: "schema" });
  for (const [status, response] of Object.entries(op.responses || {})) {
    const [type, schema] = contentSchema(response.content);
    responses.append(
      el("li", {}, el("span", { class: "status" }, status), ` ${response.description || ""} `, type ? el("span", { class: "type" }, `${type}: ${typeName(schema)}`) : null, status.startsWith("2") ? schemaTree(schema, 2) : null),
    );
  }
  body.append(el("h4", {}, "Responses"), responses);
  if (!path.startsWith("/api/v1/events")) body.append(el("h4", {}, "Try it"), tryForm(method, path, op));
  return el("details", { class: "op" }, summary, body);
}

async function main() {
  const main = document.getElementById("operations");
  try {
    spec = await (await fetch("/api/v1/openapi.json")).json();
  } catch (error) {
    main.textContent = `cannot read /api/v1/openapi.json: ${error}`;
    return;
  }
  document.getElementById("about").textContent = spec.info.description || "";
  const byTag = new Map((spec.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS.filter((m) => item[m])) {
      const tag = (item[method].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(method, path, item[method]));
    }
  }
  main.replaceChildren();
  for (const [tag, ops] of byTag) {
    if (!ops.length) continue;
    const about = (spec.tags || []).find((t) => t.name === tag);
    main.append(el("h2", {}, tag), about && about.description ? el("p", { class: "desc" }, about.description) : "", ...ops);
  }
}

main();
