// Drives a language server with the client libraries VS Code extensions use (vscode-jsonrpc and
// vscode-languageserver-protocol): `node drive.mjs SCENARIO.json`. The scenario names the server's command
// and a list of steps; what the server answered to each step is printed as one JSON object on stdout.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import rpc from "vscode-jsonrpc/node";
import lsp from "vscode-languageserver-protocol/node";

const scenario = JSON.parse(readFileSync(process.argv[2], "utf8"));
const child = spawn(scenario.command[0], scenario.command.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
const connection = rpc.createMessageConnection(
  new rpc.StreamMessageReader(child.stdout),
  new rpc.StreamMessageWriter(child.stdin),
);
const messages = [];
connection.onNotification(lsp.LogMessageNotification.type, (p) => messages.push({ log: p.message }));
connection.onNotification(lsp.ShowMessageNotification.type, (p) => messages.push({ show: p.message }));
connection.onRequest(lsp.WorkDoneProgressCreateRequest.type, () => null);
connection.onNotification("$/progress", (p) => messages.push({ progress: p.value.kind }));
connection.listen();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const versions = {};
const answers = [];

async function settled(promise) {
  try {
    return { result: await promise };
  } catch (error) {
    return { error: { code: error.code, message: error.message } };
  }
}

function inline(step, token) {
  const params = {
    textDocument: { uri: step.uri },
    position: step.position,
    context: { triggerKind: step.automatic ? 2 : 1, selectedCompletionInfo: step.selected },
  };
  return connection.sendRequest(lsp.InlineCompletionRequest.type, params, token);
}

function completion(step, token) {
  const params = { textDocument: { uri: step.uri }, position: step.position, context: { triggerKind: 1 } };
  return connection.sendRequest(lsp.CompletionRequest.type, params, token);
}

async function run(step) {
  switch (step.kind) {
    case "initialize":
      return connection.sendRequest(lsp.InitializeRequest.type, {
        processId: process.pid,
        rootUri: step.rootUri ?? null,
        workspaceFolders: step.workspaceFolders ?? null,
        initializationOptions: step.options ?? null,
        capabilities: {
          general: step.positionEncodings ? { positionEncodings: step.positionEncodings } : undefined,
          window: { workDoneProgress: true },
          textDocument: { inlineCompletion: {}, synchronization: {} },
        },
      });
    case "initialized":
      return connection.sendNotification(lsp.InitializedNotification.type, {});
    case "open":
      versions[step.uri] = 1;
      return connection.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
        textDocument: { uri: step.uri, languageId: step.languageId ?? "python", version: 1, text: step.text },
      });
    case "change":
      versions[step.uri] += 1;
      return connection.sendNotification(lsp.DidChangeTextDocumentNotification.type, {
        textDocument: { uri: step.uri, version: versions[step.uri] },
        contentChanges: step.changes,
      });
    case "close":
      return connection.sendNotification(lsp.DidCloseTextDocumentNotification.type, { textDocument: { uri: step.uri } });
    case "configure":
      return connection.sendNotification(lsp.DidChangeConfigurationNotification.type, { settings: step.settings });
    case "inline":
      return settled(inline(step));
    case "completion":
      return settled(completion(step));
    case "cancel": {
      // The request, then its cancel after `after_ms` (0: in the same write burst, before any work starts).
      const source = new rpc.CancellationTokenSource();
      const answer = settled(step.request === "completion" ? completion(step, source.token) : inline(step, source.token));
      if (step.after_ms) await sleep(step.after_ms);
      source.cancel();
      return answer;
    }
    case "together": {
      // Several requests written at once (typing faster than the server answers): all answers, in order.
      return Promise.all(step.requests.map((r) => settled(r.kind === "completion" ? completion(r) : inline(r))));
    }
    case "wait":
      return sleep(step.ms);
    case "shutdown":
      return connection.sendRequest(lsp.ShutdownRequest.type);
    case "exit":
      await connection.sendNotification(lsp.ExitNotification.type);
      return { exit_code: await exited };
  }
  throw new Error(`unknown step ${step.kind}`);
}

for (const step of scenario.steps) {
  const answer = await run(step);
  answers.push(answer === undefined ? null : answer);
}
console.log(JSON.stringify({ answers, messages }));
connection.dispose();
child.kill();
process.exit(0);
