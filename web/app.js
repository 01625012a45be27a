// Loads Pyodide and the unisockets wheel from this server, then runs the demo
// (unisockets.browser.demo) when the URL asks for it. Tests drive the page
// through window.unisockets.run(code) (see tests/browser/).
import { loadPyodide } from "./pyodide/pyodide.mjs";

const timings = { navigationToScript: performance.now() };
const statusLine = document.getElementById("boot");

function say(text) {
  if (statusLine) statusLine.textContent = text;
}

async function boot() {
  const manifest = await (await fetch("wheels/manifest.json", { cache: "no-store" })).json();
  say("loading Pyodide…");
  const pyodide = await loadPyodide({ indexURL: new URL("pyodide/", location.href).href });
  timings.pyodideLoaded = performance.now();
  say("installing unisockets…");
  // micropip is not in Pyodide's npm package: load its wheel by URL, then let
  // it install ours by URL, without dependencies (the browser driver needs none).
  await pyodide.loadPackage(new URL(`wheels/${manifest.micropip}`, location.href).href);
  const urls = manifest.wheels.map((name) => new URL(`wheels/${name}`, location.href).href);
  await pyodide.runPythonAsync(
    `import micropip\nawait micropip.install(${JSON.stringify(urls)}, deps=False)`,
  );
  timings.installed = performance.now();
  say("ready");
  return pyodide;
}

const ready = boot();

window.unisockets = {
  ready,
  timings,
  // Runs Python code (top-level await allowed) in a fresh namespace and returns
  // its last expression converted to JavaScript (a JSON-able value).
  async run(code) {
    const pyodide = await ready;
    const namespace = pyodide.globals.get("dict")();
    try {
      const result = await pyodide.runPythonAsync(code, { globals: namespace });
      if (result && typeof result.toJs === "function") {
        const value = result.toJs({ dict_converter: Object.fromEntries });
        result.destroy();
        return value;
      }
      return result;
    } finally {
      namespace.destroy();
    }
  },
};

ready.then(
  async (pyodide) => {
    // Only the demo page (index.html) runs the demo; wasm.html uses this boot alone.
    if (!document.getElementById("demo")) return;
    await pyodide.runPythonAsync(
      "from unisockets.browser.demo import start\nstart()",
    );
  },
  (error) => {
    say(`failed: ${error}`);
    console.error(error);
  },
);
