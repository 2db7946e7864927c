"""Block Kit, validated by the models of Slack's ``slack_sdk`` (the ``[slack]`` extra) before a
message is sent: a message Slack would reject is refused here, naming the block and the problem,
and costs no request."""

from __future__ import annotations

from typing import Any

from .exceptions import DeliveryError

#: Slack's limit on the blocks of one message.
MAX_BLOCKS = 50
INSTALL_HINT = "pip install 'wagtail-publish-hooks[slack]'"


class InvalidBlocks(DeliveryError):
    """The message is not valid Block Kit (nothing was sent): another attempt would send the
    same blocks."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def slack_sdk_installed() -> bool:
    try:
        import slack_sdk.models.blocks  # noqa: F401
    except ImportError:
        return False
    return True


def validate_blocks(blocks: Any) -> list[dict[str, Any]]:
    """The blocks as JSON-ready dicts, each parsed and validated by ``slack_sdk``'s models.

    A block (a dict, or a ``slack_sdk`` block object) is refused when ``slack_sdk`` does not
    know its type, finds it invalid (a missing text, a text over Slack's limit), or would not
    send it back unchanged (a key Block Kit does not have, a value of the wrong shape, an empty
    list). Raises :class:`InvalidBlocks` naming the block and the problem.
    """
    try:
        from slack_sdk.errors import SlackObjectFormationError
        from slack_sdk.models.blocks import Block
    except ImportError:
        raise DeliveryError(
            f"Slack messages need slack_sdk, which is not installed: {INSTALL_HINT} (check E065)",
            retryable=False,
        ) from None
    if not isinstance(blocks, list):
        raise InvalidBlocks(f"blocks must be a list, not {type(blocks).__name__}")
    if len(blocks) > MAX_BLOCKS:
        raise InvalidBlocks(f"a message has at most {MAX_BLOCKS} blocks, not {len(blocks)}")
    valid = []
    for index, given in enumerate(blocks):
        if isinstance(given, Block):
            given = given.to_dict()
        if not isinstance(given, dict):
            raise InvalidBlocks(f"block {index} is a {type(given).__name__}, not a dict")
        kind = given.get("type")
        where = f"block {index} ({kind})" if isinstance(kind, str) else f"block {index}"
        try:
            model = Block.parse(given) if isinstance(kind, str) else None
            if model is None or type(model) is Block:
                raise InvalidBlocks(f"{where} is not a Block Kit block type slack_sdk knows")
            model.validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
            # slack_sdk's models raise TypeError for a missing or unknown argument.
            raise InvalidBlocks(f"{where} is invalid: {exc}") from None
        parsed = model.to_dict()
        difference = _first_difference(given, parsed)
        if difference is not None:
            raise InvalidBlocks(f"{where} is not valid Block Kit at {difference!r}")
        valid.append(parsed)
    return valid


def _first_difference(given: Any, parsed: Any, path: str = "") -> str | None:
    """Where the block as ``slack_sdk`` reads it differs from the one given, or ``None``."""
    if isinstance(given, dict) and isinstance(parsed, dict):
        for key in sorted({*given, *parsed}, key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in given or key not in parsed:
                return where
            found = _first_difference(given[key], parsed[key], where)
            if found is not None:
                return found
        return None
    if isinstance(given, list) and isinstance(parsed, list) and len(given) == len(parsed):
        for index, (item, parsed_item) in enumerate(zip(given, parsed, strict=True)):
            found = _first_difference(item, parsed_item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if given == parsed and type(given) is type(parsed) else (path or "the block")
