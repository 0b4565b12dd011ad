"""Masking the child's output (esc_pulumi.cli.run): secrets split across reads or spanning lines."""
from __future__ import annotations

import io
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from esc_pulumi.cli.run import StreamMasker, masker, run_masked

PY = sys.executable


def stream(secrets, pieces):
    m = StreamMasker(masker(secrets).needles)
    return b"".join(m.feed(p) for p in pieces) + m.close()


def test_a_secret_split_at_every_position_is_masked():
    text = b"before hunter2 middle -----BEGIN-----\nAAAA\n-----END----- after\n"
    secrets = ["hunter2", "-----BEGIN-----\nAAAA\n-----END-----"]
    whole = masker(secrets)(text)
    assert whole == b"before [secret] middle [secret] after\n"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert stream(secrets, [text[:i], text[i:j], text[j:]]) == whole
    assert stream(secrets, [bytes([b]) for b in text]) == whole


def test_overlapping_secrets_mask_the_whole_stretch():
    mask = masker(["abcdef", "xabc"])
    assert mask(b"-xabcdef-") == b"-[secret]-"
    assert stream(["abcdef", "xabc"], [b"-xab", b"cde", b"f-"]) == b"-[secret]-"
    assert masker(["abc"])(b"abcabc") == b"[secret][secret]"


def test_lines_and_escaped_forms_of_a_secret_are_masked():
    mask = masker(["line one\nline two", 'q"uo<te'])
    # Each line alone (a logger prefixing every line), and the JSON forms.
    assert mask(b"log: line one\nlog: line two\n") == b"log: [secret]\nlog: [secret]\n"
    assert mask(b'{"a": "line one\\nline two"}') == b'{"a": "[secret]"}'
    assert mask(b'"q\\"uo\\u003cte"') == b'"[secret]"'


def test_nothing_is_held_back_that_cannot_start_a_secret():
    m = StreamMasker(masker(["hunter2"]).needles)
    assert m.feed(b"Password: ") == b"Password: "
    assert m.feed(b"hun") == b""  # could be the start of the secret
    assert m.feed(b"gry\n") == b"hungry\n"
    assert m.feed(b"xhunter") == b"x"
    assert m.close() == b"hunter"  # the end of the stream: it was not the secret


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=3, max_size=8), min_size=1, max_size=3),
    st.lists(st.sampled_from([b"a", b"\n", b"x", b"ab"]) | st.binary(max_size=5), max_size=10),
    st.data(),
)
def test_streaming_equals_masking_the_whole(needles, filler, data):
    secrets = [n.decode("latin-1") for n in needles]
    parts = []
    for f in filler:
        parts.append(f)
        parts.append(data.draw(st.sampled_from(secrets)).encode("utf-8"))
    text = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    assert stream(secrets, pieces) == masker(secrets)(text)
    for s in secrets:
        if len(s.encode("utf-8")) >= 3 and s.encode("utf-8") not in b"[secret]":
            assert s.encode("utf-8") not in stream(secrets, pieces)


def test_run_masked_masks_a_secret_written_in_pieces():
    out, err = io.BytesIO(), io.BytesIO()
    child = (
        "import sys, time\n"
        "for part in ['first li', 'ne\\nsecond ', 'line\\n']:\n"
        "    sys.stdout.write(part); sys.stdout.flush(); time.sleep(0.05)\n"
    )
    code = run_masked([PY, "-c", child], {"PATH": "/usr/bin:/bin"}, ["first line\nsecond line"],
                      stdout=out, stderr=err)
    assert (code, out.getvalue()) == (0, b"[secret]\n")
