"""common.errors.first_line: the one-line summary that error messages quote."""

from __future__ import annotations

import tensorflow as tf

from common.errors import first_line


def test_first_non_empty_line_shortened_with_ellipsis():
    error = OSError("\n  Unable to open file (truncated file: eof = 96)  \nsecond line")
    assert first_line(error) == "Unable to open file (truncated file: eof = 96)"
    assert first_line(ValueError("x" * 50), limit=10) == "xxxxxxx..."
    assert len(first_line(ValueError("y" * 500), limit=200)) == 200


def test_empty_message_gives_the_type_name_or_the_default():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError(""), default="") == ""
    assert first_line(RuntimeError("  \n "), default="no message") == "no message"


def test_tensorflow_errors_use_their_message():
    error = tf.errors.InvalidArgumentError(None, None, "paddings must be less than the dimension size\n\t [[node pad]]")
    assert first_line(error) == "paddings must be less than the dimension size"
