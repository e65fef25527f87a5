"""The socket LB maps' layout: sock_lb.c's structs against the one Python codec (module_utils/sock_lb.py).

The C is read, not compiled: each struct's fields with their offsets and sizes as the C compiler lays
them out (natural alignment), which maps use which structs, which fields are in network order, and the
benchmark ids' top bit. A change on either side that the other does not follow fails here.
"""

import re
import struct
from pathlib import Path

import pytest

from ansible_collections.netlab.lab.plugins.module_utils import sock_lb

SOCK_LB = Path(__file__).parents[2] / "roles/lab_cni/files/bpf/sock_lb.c"
C_SIZES = {"__u8": 1, "__u16": 2, "__u32": 4, "__u64": 8}
_STRUCT = re.compile(r"^struct (\w+) \{\n(.*?)^\};", re.MULTILINE | re.DOTALL)
_FIELD = re.compile(r"^\s*(__u\d+) (\w+)(?:\[(\d+)\])?;(.*)$")
_MAP = re.compile(r"^struct \{\n(.*?)^\} (\w+) SEC\(\"\.maps\"\);", re.MULTILINE | re.DOTALL)
_MAP_TYPE = re.compile(r"__type\((key|value), struct (\w+)\)")


def c_structs(source: str) -> dict[str, list[tuple[str, int, int, bool]]]:
    """Each named struct: (field, offset, size, network order) in order, and a final ("sizeof", size)."""
    structs = {}
    for name, body in _STRUCT.findall(source):
        fields, offset, align = [], 0, 1
        for line in body.splitlines():
            match = _FIELD.match(line)
            assert match, f"struct {name}: a field this test cannot read: {line!r}"
            ctype, field, count, comment = match.groups()
            size = C_SIZES[ctype]
            offset = (offset + size - 1) // size * size
            fields.append((field, offset, size * int(count or 1), "network order" in comment))
            offset += size * int(count or 1)
            align = max(align, size)
        fields.append(("sizeof", (offset + align - 1) // align * align, 0, False))
        structs[name] = fields
    return structs


def python_structs() -> dict[str, list[tuple[str, int, int, bool]]]:
    """The same, from the codec's formats ("4s", "2s": bytes in network order)."""
    structs = {}
    for name, fields in sock_lb.SOCK_LB_STRUCTS.items():
        out, offset = [], 0
        for field, fmt in fields:
            size = struct.calcsize("=" + fmt)
            out.append((field, offset, size, fmt.endswith("s")))
            offset += size
        out.append(("sizeof", offset, 0, False))
        structs[name] = out
    return structs


def c_maps(source: str) -> dict[str, tuple[str, str]]:
    """Each map's key and value struct (maps keyed or valued by a plain integer are left out)."""
    maps = {}
    for body, name in _MAP.findall(source):
        types = dict(_MAP_TYPE.findall(body))
        if set(types) == {"key", "value"}:
            maps[name] = (types["key"], types["value"])
    return maps


def c_define(source: str, name: str) -> int:
    match = re.search(rf"^#define {name} (0x[0-9a-fA-F]+|\d+)u?\b", source, re.MULTILINE)
    assert match, f"no #define {name} in {SOCK_LB.name}"
    return int(match.group(1), 0)


@pytest.fixture(scope="module")
def source() -> str:
    return SOCK_LB.read_text()


def test_the_codec_has_every_struct_of_sock_lb(source):
    assert set(c_structs(source)) == set(sock_lb.SOCK_LB_STRUCTS)


@pytest.mark.parametrize("name", sorted(sock_lb.SOCK_LB_STRUCTS))
def test_fields_offsets_sizes_and_byte_order_agree(source, name):
    assert python_structs()[name] == c_structs(source)[name]


def test_each_map_uses_the_same_structs(source):
    assert c_maps(source) == sock_lb.SOCK_LB_MAPS


def test_map_sizes_are_the_structs_sizes(source):
    sizes = {name: fields[-1][1] for name, fields in c_structs(source).items()}
    from_c = {name: (sizes[key], sizes[value]) for name, (key, value) in c_maps(source).items()}
    assert from_c == sock_lb.MAP_SIZES


def test_benchmark_id_bit_agrees(source):
    assert c_define(source, "BENCHMARK_ID_BIT") == sock_lb.BENCHMARK_ID_BIT


# The reader itself: a changed C layout is seen, so the tests above can fail.
@pytest.mark.parametrize(("old", "new"), [
    # two fields swapped
    ("\t__u32 id;\n\t__u32 slot;", "\t__u32 slot;\n\t__u32 id;"),
    # a wider field (and the padding the compiler then inserts)
    ("\t__u8 protocol;  /* IPPROTO_TCP or IPPROTO_UDP */\n\t__u8 pad;", "\t__u32 protocol;"),
    # the port in host order
    ("\t__u16 port;     /* network order */\n\t__u8 protocol;", "\t__u16 port;\n\t__u8 protocol;"),
])
def test_a_changed_c_struct_no_longer_agrees(source, old, new):
    assert old in source
    changed = c_structs(source.replace(old, new))
    assert changed != c_structs(source)
    assert changed != python_structs()


def test_c_alignment_is_computed_as_the_compiler_does():
    text = "struct s {\n\t__u8 a;\n\t__u32 b;\n\t__u16 c;\n};\n"
    assert c_structs(text)["s"] == [("a", 0, 1, False), ("b", 4, 4, False), ("c", 8, 2, False),
                                    ("sizeof", 12, 0, False)]
