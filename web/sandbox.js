// The map/reduce sandbox: a dedicated Web Worker that runs the code a user wrote for a job,
// off the page's main thread. It has no DOM, no page token and no cookies to read, and before
// any user code runs it removes every way out it could use (network, storage, other contexts,
// new code from strings), so the only input is the message the page hands it and the only
// output its answer. The page (web/src/sandbox.rs) enforces the time budget: a step that does
// not answer in time gets this worker terminated and replaced.
//
// Protocol (JSON text both ways, one answer per request, in order):
//   {"job":{"map":"…","reduce":"…"}}  -> {"ready":true}            compiles the two steps
//   {"map":"<message value>"}         -> {"emitted":n}             map, then reduce into the partial
//   {"take":true}                     -> {"partial":{key:value…},"outputs":[…]}  so far, then empty
//   {"combine":{key:value…},"top":n}  -> {"keys":n,"top":[[k,v]…]} reduce a partial into the total
// Any step that throws answers {"error":"…"} and changes nothing.
(() => {
  "use strict";
  const post = self.postMessage.bind(self);
  const listen = self.addEventListener.bind(self);
  const compile = Function;
  const parse = JSON.parse;
  const stringify = JSON.stringify;

  // Ways out of the worker, and ways to build code from strings (which could hide `import(`).
  const BLOCKED = [
    "fetch", "fetchLater", "XMLHttpRequest", "WebSocket", "WebSocketStream", "WebTransport",
    "EventSource", "importScripts",
    "indexedDB", "caches", "BroadcastChannel", "MessageChannel", "Worker", "SharedWorker",
    "navigator", "postMessage", "addEventListener", "removeEventListener", "onmessage",
    "onmessageerror", "close", "eval", "Function", "setTimeout", "setInterval", "WebAssembly",
    "Request", "Response", "FileReaderSync", "Notification", "CookieStore", "cookieStore",
  ];
  for (let scope = self; scope && scope !== Object.prototype; scope = Object.getPrototypeOf(scope)) {
    for (const name of BLOCKED) {
      try { delete scope[name]; } catch (_) { /* not configurable: shadowed below */ }
    }
  }
  for (const name of BLOCKED) {
    try { Object.defineProperty(self, name, { value: undefined, writable: false, configurable: false }); } catch (_) { /* gone */ }
  }
  // `(() => {}).constructor("…")` is `Function` by another name: close it for every kind.
  const kinds = [function () {}, function* () {}, async function () {}, async function* () {}];
  for (const kind of kinds) {
    Object.defineProperty(Object.getPrototypeOf(kind), "constructor", {
      value: undefined, writable: false, configurable: false,
    });
  }

  let map = null;
  let reduce = null;
  let acc = new Map();
  let outputs = [];

  const build = (params, body) => {
    if (/\bimport\b/.test(body)) throw new Error("import is not available in a job");
    return compile(...params, `"use strict";\n${body}`);
  };

  // Folds `entries` into `into` with reduce, all or nothing.
  const fold = (into, entries) => {
    const next = new Map();
    for (const [key, value] of entries) {
      const held = next.has(key) ? next.get(key) : into.get(key);
      next.set(key, held === undefined ? value : reduce(held, value, key));
    }
    for (const [key, value] of next) into.set(key, value);
    return next.size;
  };

  const score = (value) => typeof value === "number" ? value
    : value && typeof value.count === "number" ? value.count : 0;

  const handle = (request) => {
    if (request.job) {
      map = build(["value", "emit", "output"], String(request.job.map));
      reduce = build(["a", "b", "key"], String(request.job.reduce));
      acc = new Map();
      outputs = [];
      return { ready: true };
    }
    if (!map) throw new Error("no job");
    if ("map" in request) {
      const emitted = [];
      const emit = (key, value) => {
        const json = stringify(value === undefined ? null : value);
        emitted.push([String(key), parse(json)]);
      };
      const out = [];
      const output = (value) => {
        out.push(typeof value === "string" ? value : parse(stringify(value === undefined ? null : value)));
      };
      map(request.map, emit, output);
      fold(acc, emitted);
      outputs.push(...out);
      return { emitted: emitted.length };
    }
    if (request.take) {
      const answer = { partial: Object.fromEntries(acc), outputs };
      acc = new Map();
      outputs = [];
      return answer;
    }
    if (request.combine) {
      const entries = Object.entries(request.combine).map(([k, v]) => [k, v]);
      fold(acc, entries);
      const top = [...acc].sort((a, b) => score(b[1]) - score(a[1]) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      return { keys: acc.size, top: top.slice(0, request.top || 20) };
    }
    throw new Error("unknown request");
  };

  listen("message", (event) => {
    let answer;
    try {
      answer = handle(parse(event.data));
      answer = stringify(answer);
    } catch (error) {
      const text = error && error.message ? `${error.name}: ${error.message}` : String(error);
      answer = stringify({ error: text });
    }
    post(answer);
  });
})();
