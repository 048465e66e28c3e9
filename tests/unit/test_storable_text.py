"""What text memberflow keeps: XML 1.0 characters (what SQS accepts in a message, and what DynamoDB and any JSON
consumer can store), checked against the XML 1.0 `Char` production for every code point."""

from __future__ import annotations

import pytest

from memberflow.models import _NOT_STORABLE, check_text


def xml_char(code_point: int) -> bool:
    """XML 1.0 (fifth edition) §2.2: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]."""
    return (
        code_point in (0x9, 0xA, 0xD)
        or 0x20 <= code_point <= 0xD7FF
        or 0xE000 <= code_point <= 0xFFFD
        or 0x10000 <= code_point <= 0x10FFFF
    )


def test_every_code_point_outside_xml_chars_is_refused_and_every_one_inside_is_kept() -> None:
    everything = "".join(map(chr, range(0x110000)))
    refused = {match.start() for match in _NOT_STORABLE.finditer(everything)}
    assert refused == {code_point for code_point in range(0x110000) if not xml_char(code_point)}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a\x00b", "position 1"), ("ok\ud800", "position 2"), ("\uffff", "position 0"), ("tab\tok\x1f", "position 6")],
)
def test_text_that_cannot_be_stored_is_refused_with_its_position(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_text(text)


def test_storable_text_is_kept_as_it_is() -> None:
    text = "Ünïcode \t\n\r 𝔘 \ue000 \ufffd done"
    assert check_text(text) is text
