"""GGUF metadata keys localcoder writes for its later stages to read.

The prompt format and family let `localcoder complete` pick the right infill
layout without guessing from the file name.
"""

FAMILY = "localcoder.family"  # "codegen2.5", later "codegen2", "codegen1"
PROMPT_FORMAT = "localcoder.prompt_format"  # "codegen-infill" | "left-to-right"
CONVERTER_VERSION = "localcoder.converter_version"
SOURCE_REPO = "localcoder.source.repo_id"
SOURCE_REVISION = "localcoder.source.revision"
SOURCE_DTYPE = "localcoder.source.dtype"
