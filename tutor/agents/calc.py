"""Arithmetic for the calculator tool: a small recursive-descent parser, never ``eval``.

Grammar (what a model tends to write, including ``17% of 2,480`` and ``3 x 4``)::

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | 'x' | '×' | '/' | '÷' | '//' | 'mod' | 'of') unary)*
    unary   := ('+' | '-') unary | power
    power   := postfix (('^' | '**') unary)?          right-associative, like maths
    postfix := atom '%'?                              17% is 0.17
    atom    := number | '(' expr ')' | func '(' expr (',' expr)* ')' | 'pi' | 'e'

Every input is bounded, so a hostile expression costs microseconds and a clear message, never a hang:
length, nesting depth, the size of numbers, exponents and results.
"""
from __future__ import annotations

import math
import re

from tutor.errors import TutorError

# 200 characters hold any sum a learner's question needs (a 30-term sum of 5-digit numbers is ~180).
MAX_CHARS = 200
# Parentheses nested 20 deep are already unreadable; the bound keeps the recursion far from Python's limit.
MAX_DEPTH = 20
# |x| <= 1e15 keeps every integer exact in a float (2**53 ~ 9.0e15); results are allowed up to 1e100.
MAX_NUMBER, MAX_RESULT = 1e15, 1e100
# 10**100 is the largest power MAX_RESULT allows, so no exponent beyond 100 in size is ever useful.
MAX_EXPONENT = 100

FUNCTIONS = {"sqrt": (math.sqrt, 1), "abs": (abs, 1), "round": (round, (1, 2)), "min": (min, (2, 10)),
             "max": (max, (2, 10))}
CONSTANTS = {"pi": math.pi, "e": math.e}
# A thousands separator only between digit groups of exactly three ("2,480", "1,234,567"), so "max(2,3)" still
# reads as two arguments.
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+", re.I)
_TOKEN = re.compile(r"\s*(?:(?P<num>" + _NUMBER.pattern + r")|(?P<op>\*\*|//|[-+*/^%(),×÷])|(?P<word>[a-z]+))",
                    re.I)


class CalculatorError(TutorError):
    """The expression cannot be computed; the message says why and what to write instead."""


def calculate(expression: str) -> float:
    """The value of ``expression``; raises CalculatorError with a reason a model (and a learner) can act on."""
    # What models wrap around an expression: quotes, a currency ("39.90 EUR"), their own guess ("2 + 2 = 5").
    text = (expression or "").split("=")[0]
    text = re.sub(r"[$€£]|\b(?:eur|usd|gbp|euros?|dollars?)\b", " ", text, flags=re.I)
    text = re.sub(r"^[\s`'\"]+|[\s`'\"?.]+$", "", text)
    if not text:
        raise CalculatorError("the expression is empty; write one such as 12 * (3 + 4)")
    if len(text) > MAX_CHARS:
        raise CalculatorError(f"the expression is {len(text):,} characters long; the calculator takes at most "
                              f"{MAX_CHARS}, so split the calculation into steps")
    value = _Parser(_tokens(text)).parse()
    return _checked(value)


def format_number(value: float) -> str:
    """``434`` rather than ``434.0``; ten significant digits at most, so float noise (0.1 + 0.2) does not show."""
    if value == int(value) and abs(value) < MAX_NUMBER:
        return str(int(value))
    return f"{value:.10g}"


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            rest = text[at:].strip()
            if not rest:
                break
            raise CalculatorError(f"cannot read '{rest[:20]}' in the expression; use numbers, + - * / ^ % and "
                                  "parentheses (no variables or units)")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "word":
            value = value.lower()
            if value not in FUNCTIONS and value not in CONSTANTS and value not in ("x", "of", "mod"):
                raise CalculatorError(f"'{value}' is not something the calculator knows; use numbers, + - * / ^ % "
                                      f"and the functions {', '.join(FUNCTIONS)}")
        tokens.append((kind, value))
        at = match.end()
    return tokens


def _checked(value: float) -> float:
    if isinstance(value, complex) or math.isnan(value):
        raise CalculatorError("the result is not a real number (for example the square root of a negative number)")
    if math.isinf(value) or abs(value) > MAX_RESULT:
        raise CalculatorError(f"the result is larger than {MAX_RESULT:g}; check the expression")
    return value


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens, self.at, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise CalculatorError("the expression ends too early; is a number or a closing parenthesis missing?")
        self.at += 1
        return self.tokens[self.at - 1]

    def parse(self) -> float:
        value = self.expr()
        if self.at < len(self.tokens):
            raise CalculatorError(f"unexpected '{self.peek()}' in the expression; is an operator missing?")
        return value

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            op, right = self.take()[1], self.term()
            value = _checked(value + right if op == "+" else value - right)
        return value

    def term(self) -> float:
        value = self.unary()
        while self.peek() in ("*", "x", "×", "/", "÷", "//", "mod", "of"):
            op, right = self.take()[1], self.unary()
            if op in ("/", "÷", "//", "mod") and right == 0:
                raise CalculatorError("division by zero; check the divisor")
            if op in ("/", "÷"):
                value = value / right
            elif op == "//":
                value = float(value // right)
            elif op == "mod":
                value = value % right
            else:
                value = value * right
            value = _checked(value)
        return value

    def unary(self) -> float:
        if self.peek() in ("+", "-"):
            sign = -1 if self.take()[1] == "-" else 1
            return sign * self.nested(self.unary)
        return self.power()

    def power(self) -> float:
        base = self.postfix()
        if self.peek() in ("^", "**"):
            self.take()
            exponent = self.nested(self.unary)
            if abs(exponent) > MAX_EXPONENT:
                raise CalculatorError(f"the exponent {format_number(exponent)} is too large; the calculator "
                                      f"allows exponents up to {MAX_EXPONENT}")
            if base == 0 and exponent < 0:
                raise CalculatorError("zero cannot be raised to a negative power (division by zero)")
            try:
                return _checked(math.pow(base, exponent))
            except (OverflowError, ValueError):
                raise CalculatorError("the power cannot be computed (too large, or a negative number to a "
                                      "fractional power)") from None
        return base

    def postfix(self) -> float:
        value = self.atom()
        if self.peek() == "%":
            self.take()
            value = value / 100
        return value

    def atom(self) -> float:
        kind, value = self.take()
        if kind == "num":
            number = float(value.replace(",", ""))
            if abs(number) > MAX_NUMBER:
                raise CalculatorError(f"the number {value[:20]} is too large; the calculator takes numbers up to "
                                      f"{MAX_NUMBER:g}")
            return number
        if value == "(":
            inner = self.nested(self.expr)
            self.expect(")")
            return inner
        if value in CONSTANTS:
            return CONSTANTS[value]
        if value in FUNCTIONS:
            return self.call(value)
        raise CalculatorError(f"unexpected '{value}' in the expression; a number or '(' should come here")

    def call(self, name: str) -> float:
        function, arity = FUNCTIONS[name]
        self.expect("(")
        args = [self.nested(self.expr)]
        while self.peek() == ",":
            self.take()
            args.append(self.nested(self.expr))
        self.expect(")")
        low, high = arity if isinstance(arity, tuple) else (arity, arity)
        if not low <= len(args) <= high:
            raise CalculatorError(f"{name}() takes {low if low == high else f'{low} to {high}'} argument(s), "
                                  f"got {len(args)}")
        if name == "round" and len(args) == 2:
            args[1] = int(args[1])
        try:
            return _checked(float(function(*args)))
        except ValueError:
            raise CalculatorError(f"{name}() cannot take {', '.join(map(format_number, args))}") from None

    def expect(self, symbol: str) -> None:
        if self.peek() != symbol:
            raise CalculatorError(f"'{symbol}' expected in the expression; check the parentheses")
        self.take()

    def nested(self, rule):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CalculatorError(f"the expression nests more than {MAX_DEPTH} levels deep; simplify it")
        try:
            return rule()
        finally:
            self.depth -= 1
