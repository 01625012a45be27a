// Runs an unmodified wasm32-wasi program (built for `unisockets run`) in this tab.
//
// - WASI preview 1 comes from @bjorn3/browser_wasi_shim (web/package.json);
// - the `unisockets_*` imports and the WASI functions on sockets are served
//   by unisockets.browser.wasm_guest on this tab's node (Pyodide), from the
//   import table the native runner uses (unisockets.wasm.abi.import_table);
// - an import that may wait is a WebAssembly.Suspending function and _start
//   runs through WebAssembly.promising (JavaScript Promise Integration), so a
//   blocked accept() suspends the program, not the tab.
//
// URL: wasm.html?program=URL&signaling=ws://...&subnet=10.0.0&arg=A&arg=B&env=N=V&stdin=TEXT
// runs the program at once (`unisockets run --browser` prints such a URL).
// Tests drive window.unisocketsWasm (see tests/browser/test_wasm_tab.py).
import "./app.js";
import { WASI, WASIProcExit, File, OpenFile, ConsoleStdout } from "./wasi-shim/index.js";

const $ = (id) => document.getElementById(id);

/** Whether this browser has JSPI (Chromium 137+; not Firefox or Safari as of 2026). */
export const jspi =
  typeof WebAssembly.Suspending === "function" && typeof WebAssembly.promising === "function";

/** Thrown out of a suspended import to unwind a guest that is being stopped. */
class GuestStopped extends Error {
  constructor() {
    super("the program was stopped");
    this.name = "GuestStopped";
  }
}

const state = {
  status: "idle", // idle | joining | running | exited | stopped | trapped | failed
  address: null,
  stdout: "",
  stderr: "",
  exitCode: null,
  error: null,
  timings: {},
};
let current = null; // { guest, stopped } while a program runs

function show() {
  $("state").textContent = state.error ? `${state.status}: ${state.error}` : state.status;
  $("address").textContent = state.address ?? "–";
  $("exit").textContent = state.exitCode ?? "–";
  const running = state.status === "joining" || state.status === "running";
  $("run").disabled = running || !jspi;
  $("stop").disabled = !running;
}

function output(stream) {
  const decoder = new TextDecoder();
  return new ConsoleStdout((bytes) => {
    state.timings.firstOutput ??= performance.now(); // ms since navigation (benchmarks)
    const text = decoder.decode(bytes, { stream: true });
    state[stream] += text;
    $("output").textContent += text;
    (stream === "stderr" ? console.warn : console.log)(`[guest ${stream}] ${text.trimEnd()}`);
  });
}

/**
 * An import for `spec` (an entry of the table). `route(args)` says whether the tab's node
 * serves this call (else `fallback`, the shim's function, does). Imports that may block are
 * WebAssembly.Suspending: a call that must wait returns a promise, which the guest's Python
 * task settles itself; JSPI suspends the program meanwhile. A stop makes them throw.
 */
function makeImport(spec, guest, route = () => true, fallback = null) {
  const stoppedCheck = (error) => {
    if (current?.stopped) throw new GuestStopped();
    throw error;
  };
  if (!spec.blocks) {
    return (...args) => {
      if (current?.stopped) throw new GuestStopped();
      if (!route(args)) return fallback(...args);
      try {
        return guest.call(spec.name, ...args);
      } catch (error) {
        return stoppedCheck(error);
      }
    };
  }
  return new WebAssembly.Suspending((...args) => {
    if (current?.stopped) throw new GuestStopped();
    if (!route(args)) return fallback(...args);
    let settle;
    const promise = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    let now;
    try {
      now = guest.call_blocking(settle.resolve, settle.reject, spec.name, ...args);
    } catch (error) {
      return stoppedCheck(error);
    }
    if (typeof now === "number") return now;
    return promise.catch((error) => stoppedCheck(new Error(String(error))));
  });
}

async function fetchModule(program) {
  if (program instanceof WebAssembly.Module) return program;
  if (program instanceof ArrayBuffer || ArrayBuffer.isView(program)) {
    return WebAssembly.compile(program);
  }
  const response = await fetch(program);
  if (!response.ok) throw new Error(`cannot load ${program}: HTTP ${response.status}`);
  return WebAssembly.compileStreaming(response);
}

/**
 * Run a program to its end. Options: program (URL, bytes or Module), signaling (ws:// URL),
 * subnet, args (array), env (array of "NAME=VALUE"), stdin (string), name (argv[0]).
 * Resolves to the final state: status "exited" (exitCode), "stopped", "trapped" or "failed".
 */
export async function run(options) {
  if (!jspi) {
    throw new Error("this browser lacks JavaScript Promise Integration (WebAssembly.Suspending)");
  }
  if (current) throw new Error("a program is already running in this tab");
  Object.assign(state, {
    status: "joining", address: null, stdout: "", stderr: "", exitCode: null, error: null,
    timings: {},
  });
  $("output").textContent = "";
  // The form shows what runs, also when a script started it.
  if (typeof options.program === "string") $("program").value = options.program;
  $("args").value = (options.args ?? []).join(" ");
  for (const name of ["signaling", "subnet", "stdin"]) {
    if (options[name] !== undefined) $(name).value = options[name];
  }
  current = { guest: null, stopped: false };
  const started = performance.now();
  show();
  try {
    const pyodide = await window.unisockets.ready;
    const module = await fetchModule(options.program);
    state.timings.compiled = performance.now() - started;
    const wasmGuest = pyodide.pyimport("unisockets.browser.wasm_guest");
    const ready = wasmGuest.start(options.signaling, options.subnet ?? "10.0.0");
    try {
      current.guest = await ready;
    } finally {
      ready.destroy();
      wasmGuest.destroy();
    }
    const guest = current.guest;
    state.address = guest.address;
    state.timings.joined = performance.now() - started;
    if (current.stopped) throw new GuestStopped();
    const name = options.name ?? String(options.program).split("/").pop();
    const stdin = new OpenFile(new File(new TextEncoder().encode(options.stdin ?? "")));
    const wasi = new WASI([name, ...(options.args ?? [])], options.env ?? [], [
      stdin, output("stdout"), output("stderr"),
    ]);
    const table = JSON.parse(guest.table_json());
    const imports = { env: {}, wasi_snapshot_preview1: { ...wasi.wasiImport } };
    for (const spec of table.imports) {
      imports[spec.module][spec.name] = makeImport(spec, guest);
    }
    // WASI functions on sockets go to the tab's node; on stdio, to the shim.
    const alwaysOurs = new Set(["sock_shutdown", "poll_oneoff"]);
    for (const spec of table.wasi) {
      const route = alwaysOurs.has(spec.name) ? () => true : (args) => guest.is_socket(args[0]);
      imports[spec.module][spec.name] = makeImport(spec, guest, route, wasi.wasiImport[spec.name]);
    }
    const instance = await WebAssembly.instantiate(module, imports);
    wasi.inst = instance; // the shim reads the guest's memory through it
    const errnoExport = instance.exports.errno;
    guest.attach(instance.exports.memory, errnoExport ? errnoExport.value : undefined);
    state.status = "running";
    state.timings.started = performance.now() - started;
    show();
    try {
      await WebAssembly.promising(instance.exports._start)();
      state.exitCode = 0;
      state.status = "exited";
    } catch (error) {
      if (error instanceof WASIProcExit) {
        state.exitCode = error.code;
        state.status = "exited";
      } else if (current.stopped) {
        state.status = "stopped";
      } else {
        state.status = "trapped";
        state.error = String(error);
        console.error(error);
      }
    }
  } catch (error) {
    if (current.stopped) {
      state.status = "stopped";
    } else {
      state.status = "failed";
      state.error = String(error?.message ?? error);
      console.error(error);
    }
  } finally {
    const guest = current.guest;
    current = null;
    if (guest) {
      try {
        await guest.aclose();
      } finally {
        guest.destroy();
      }
    }
    show();
  }
  return { ...state, timings: { ...state.timings } };
}

/** Stop the running program: its blocked call ends, the program unwinds, its sockets close. */
export function stop() {
  if (!current) return false;
  current.stopped = true;
  current.guest?.stop();
  return true;
}

let finished = null;
/** Start run(options) without waiting; window.unisocketsWasm.finished is its promise. */
export function start(options) {
  finished = run(options);
  window.unisocketsWasm.finished = finished;
  return true;
}

window.unisocketsWasm = { jspi, state, run, start, stop, finished };

// The page: JSPI notice, form, URL parameters.
$("jspi").textContent = jspi
  ? "JavaScript Promise Integration: available (blocking calls suspend the program)."
  : "This browser lacks JavaScript Promise Integration (WebAssembly.Suspending and " +
    "WebAssembly.promising), which this page needs to suspend a program in a blocking " +
    "call. Use Chromium 137 or later.";
$("jspi").className = jspi ? "jspi ok" : "jspi missing";

function formOptions() {
  return {
    program: $("program").value,
    signaling: $("signaling").value,
    subnet: $("subnet").value,
    args: $("args").value.split(/\s+/).filter(Boolean),
    stdin: $("stdin").value,
  };
}

$("run-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start(formOptions());
});
$("stop").addEventListener("click", () => stop());

const params = new URLSearchParams(location.search);
for (const name of ["program", "signaling", "subnet", "stdin"]) {
  if (params.has(name)) $(name).value = params.get(name);
}
if (params.has("arg")) $("args").value = params.getAll("arg").join(" ");
window.unisockets.ready.then(() => {
  show();
  if (params.has("program") && params.has("signaling") && jspi) {
    start({ ...formOptions(), args: params.getAll("arg"), env: params.getAll("env") });
  }
});
