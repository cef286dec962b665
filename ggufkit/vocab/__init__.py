"""The CodeGen2.5 vocabulary bundled with localcoder (GPT-2 BPE plus the whitespace runs and sentinels): the
converter writes it into GGUFs, the context stage counts tokens with it, tokenizer_only writes a vocabulary-only
GGUF from it."""
