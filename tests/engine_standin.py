"""An OpenAI-completions engine for the tests: llama-cpp-python's own `Llama.create_completion` (what
`python -m llama_cpp.server` runs per request) behind a stdlib HTTP server, streamed as server-sent events.

Run: python tests/engine_standin.py MODEL.gguf PORT MODE, MODE one of
  text     text prompts only (llama_cpp.server's schema): a list prompt is answered 422
  ids      token-id prompts too (vLLM's and OpenAI's schema)
  once     like ids, but the process exits after its first completion (an engine that goes down midway)
  nostop   like text, but ignores `stop` and keeps generating past the end-of-generation tokens
           (the negative control: what an engine that does not stop at <eom> gives)
  slow     sleeps 30 s before answering
  garbage  answers 200 with something that is not JSON
  schema   streams a chunk whose text is a number
  cut      sends one chunk, then closes the stream without [DONE]
  done     sends one chunk, then [DONE] with no finish_reason (llama_cpp.server's interrupt_requests cut)
llama-cpp-python parses special tokens in a text prompt (it tokenizes with special=True), as llama_cpp.server.
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import llama_cpp

MODEL, PORT, MODE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SERVES = ("text", "ids", "nostop", "once")
llm = llama_cpp.Llama(model_path=MODEL, n_ctx=2048, verbose=False) if MODE in SERVES else None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, json.dumps({"object": "list", "data": [{"id": "standin"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if MODE == "slow":
            time.sleep(30)
        if MODE == "garbage":
            self._send(200, b"<html>not an engine</html>", "text/html")
            return
        prompt = body["prompt"]
        if isinstance(prompt, list) and MODE not in ("ids", "once"):
            detail = {"detail": [{"loc": ["body", "prompt"], "msg": "Input should be a valid string"}]}
            self._send(422, json.dumps(detail).encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if MODE == "schema":  # the stream's shape, with a number where the text goes
            self.wfile.write(b'data: {"choices": [{"text": 5, "finish_reason": null}]}\n\n')
            return
        if MODE in ("cut", "done"):
            chunk = {"choices": [{"text": "x", "index": 0, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if MODE == "done":
                self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        assert llm is not None
        llm.reset()
        options = dict(
            max_tokens=body.get("max_tokens", 16),
            temperature=body.get("temperature", 1.0),
            top_p=body.get("top_p", 1.0),
            seed=body.get("seed"),
            stream=True,
        )
        if MODE == "nostop":
            tokens = llm.tokenize(prompt.encode(), special=True)
            for count, token in enumerate(llm.generate(tokens, temp=0.0)):
                text = llm.detokenize([token], special=True).decode("utf-8", "replace")
                last = count + 1 >= options["max_tokens"]
                chunk = {"choices": [{"text": text, "index": 0, "finish_reason": "length" if last else None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if last:
                    break
        else:
            for chunk in llm.create_completion(prompt, stop=body.get("stop"), **options):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True
        if MODE == "once":
            os._exit(0)


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
