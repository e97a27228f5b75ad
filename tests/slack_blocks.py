"""Validates Slack messages with Slack's own Block Kit models (slack_sdk).

Each argument is a file holding one message as morningcheck posts it. Every block must
parse to its slack_sdk model and pass the model's own validation (text and field
lengths, field counts, header length, ...), and the message may hold at most 50 blocks.
Prints one line per problem; exits 1 when there is any.
"""

import json
import sys

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50


def problems(path):
    with open(path, encoding="utf-8") as f:
        message = json.load(f)
    blocks = message.get("blocks", [])
    if not isinstance(message.get("text"), str) or not message["text"].strip():
        yield f"{path}: no plain-text fallback"
    if len(blocks) > MAX_BLOCKS:
        yield f"{path}: {len(blocks)} blocks, more than {MAX_BLOCKS}"
    for i, raw in enumerate(blocks):
        block = Block.parse(raw)
        if block is None:
            yield f"{path}: block {i}: slack_sdk knows no block of type {raw.get('type')!r}"
            continue
        try:
            block.validate_json()
        except Exception as e:  # slack_sdk raises SlackObjectFormationError
            yield f"{path}: block {i} ({raw.get('type')}): {e}"


def main():
    found = [p for path in sys.argv[1:] for p in problems(path)]
    for p in found:
        print(p)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
