"""The index simplifier: folding, identities, and range facts."""

from ember.ir.loops import Var, const, simplify
from ember.ir.loops.expr import Binary, Compare, Const
from ember.ir.loops.printer import print_expr


def text(e, ranges=None):
    return print_expr(simplify(e, ranges))


def test_constants_and_identities():
    i = Var("i")
    assert text(const(3, "int64") * 4 + 2) == "14"
    assert text(i * 1 + 0) == "i"
    assert text(i * 0 + 5) == "5"
    assert text((i + 2) + 3) == "(i + 5)"
    assert text((i * 2) * 3) == "(i * 6)"
    assert text(i // 1) == "i" and text(i % 1) == "0"


def test_division_cancels_with_ranges():
    o, n = Var("o"), Var("n")
    ranges = {o: (0, 9), n: (0, 3)}
    e = o * 4 + n
    assert text(e // 4, ranges) == "o"
    assert text(e % 4, ranges) == "n"
    assert text(n // 4, ranges) == "0"
    # without knowing n < 4 nothing cancels
    assert text(e // 4) == "(((o * 4) + n) // 4)"


def test_division_by_a_multiple_of_a_split_factor():
    # (o * 2 + n) // 10 with 0 <= n < 2: the inner part of a split by 2 never crosses a multiple of 10
    o, n = Var("o"), Var("n")
    assert text((o * 2 + n) // 10, {o: (0, 14), n: (0, 1)}) == "(o // 5)"
    assert text((o * 4) // 8, {o: (0, 14)}) == "(o // 2)"
    assert text((o * 2 + n) // 10, {o: (0, 14), n: (0, 2)}) == "(((o * 2) + n) // 10)"  # n may reach 2
    assert text((o * 3 + n) // 10, {o: (0, 14), n: (0, 1)}) == "(((o * 3) + n) // 10)"  # 3 does not divide 10


def test_comparisons_decided_by_ranges():
    o, n = Var("o"), Var("n")
    ranges = {o: (0, 2), n: (0, 4)}
    assert text(o * 5 + n < 15, ranges) == "True"
    assert text(o * 5 + n < 12, ranges) == "(((o * 5) + n) < 12)"
    assert text(n >= 0, ranges) == "True"
    assert text(n > 4, ranges) == "False"


def test_floats_are_not_folded():
    x = Var("x", "float32")
    e = Binary("add", const(0.1, "float32"), const(0.2, "float32"), "float32")
    assert isinstance(simplify(e), Binary)
    assert isinstance(simplify(Compare("lt", x, x)), Compare)
    assert isinstance(simplify(const(1, "int64")), Const)


def test_div_mod_recombination_cancels():
    f = Var("f")
    assert text((f // 7) * 7 + f % 7) == "f"
    assert text((f // 7) * 6 + f % 7) == "(((f // 7) * 6) + (f % 7))"


def test_row_major_index_of_a_quotient_and_remainder_is_linear():
    # the flat index of x[c, f // 7, f % 7] in an array of 7-wide rows: (c * R + f // 7) * 7 + f % 7
    c, f = Var("c"), Var("f")
    assert text((c * 3 + f // 7) * 7 + f % 7) == "((c * 21) + f)"
    assert text((c * 3 + (f + 1) // 7) * 7 + (f + 1) % 7) == "((c * 21) + (f + 1))"
    assert text((c * 3 + f // 7) * 7 + f % 5) == "((((c * 3) + (f // 7)) * 7) + (f % 5))"  # other divisors
    assert text((c * 3 + c // 7) * 7 + f % 7) == "((((c * 3) + (c // 7)) * 7) + (f % 7))"  # other dividends


def test_structural_cancellation():
    o, i = Var("o"), Var("i")
    assert text((o * 8 + i) - o * 8) == "i"
    assert text((o * 8 + i) - i) == "(o * 8)"
    assert text((o * 8) - (o * 8)) == "0"
