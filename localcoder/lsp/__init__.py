"""`localcoder lsp`: the completion core as a language server (pygls over stdio).

documents.py keeps what the editor sent (never the file on disk) and maps LSP positions onto it; options.py
is the server's settings, one typed object; features.py turns a document and a cursor into a
CompletionRequest and a result into LSP items; server.py is the pygls server: one handler per LSP feature,
cancellation, superseding and debounce.
"""
