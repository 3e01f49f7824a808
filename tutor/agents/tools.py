"""The toolbox: LangChain tools (``@tool``, each with a name, a description and an argument schema).

Every tool is a pure function of its arguments and of data given here or in the lesson: none touches the file
system or the network (the readings tool searches the index the app already opened). A tool that cannot do
what it was asked raises ``ToolException`` with a message the model can act on; the loop turns it into an
error observation. Results are plain text; the loop caps their length and the prompt fences them as untrusted.

Each tool's ``metadata["example"]`` is one worked use (question, input, result, answer): the loop can show it
to the model as a demonstration of the ReAct format (few-shot).
"""
from __future__ import annotations

import re
from typing import Callable

from langchain_core.tools import BaseTool, ToolException, tool
from pydantic import BaseModel, Field

from tutor.agents import calc, units
from tutor.agents.spec import TOOL_NAMES, Forecast, Shop, expand_tools

# Arguments are words, ids and short expressions; 200 characters is generous and keeps hostile input cheap.
ARG_CHARS = 200

#: The mock shop the lab uses when no lesson gives its own (the lesson's `agent.shop` replaces it).
DEFAULT_SHOP = Shop.model_validate({
    "currency": "EUR",
    "products": {"desk-fan": {"price": 39.90, "stock": 12}, "tower-fan": {"price": 89.00, "stock": 0},
                 "usb-cable": {"price": 6.50, "stock": 140}, "desk-lamp": {"price": 24.00, "stock": 7}},
    "orders": {"A1001": {"status": "shipped on 3 March, arriving 6 March", "items": ["desk-fan"]},
               "A1002": {"status": "waiting for payment", "items": ["desk-lamp", "usb-cable"]}},
})
#: The mock weather table (the lesson's `agent.weather` replaces it). Made up: no forecast service is asked.
DEFAULT_WEATHER = {
    "lisbon": Forecast(today="sunny, 24 °C", tomorrow="light rain, 17 °C, 70% chance of rain"),
    "oslo": Forecast(today="snow showers, -3 °C", tomorrow="cloudy, -1 °C"),
    "nairobi": Forecast(today="cloudy, 22 °C", tomorrow="thunderstorms, 21 °C, 80% chance of rain"),
    "lima": Forecast(today="overcast, 19 °C", tomorrow="overcast, 18 °C"),
    "tokyo": Forecast(today="clear, 15 °C", tomorrow="windy, 12 °C"),
}


def _example(tool: str, question: str, input: str, result: str, answer: str) -> dict:
    return {"question": question, "thought": f"I will use the {tool} tool.", "input": input, "result": result,
            "answer": answer}


#: One worked use per tool, shown to the model as a demonstration of the ReAct format when examples are on. The
#: thought names the tool plainly: with "This needs a unit conversion, so I use units." the 135M default copied
#: the pattern and invented tools ("so I use length"); "I will use the units tool." led it to real names more often.
EXAMPLES = {
    "calculator": _example("calculator", "What is 250 with 12% off?", "250 - 12% of 250", "220",
                           "250 with 12% off is 220."),
    "units": _example("units", "How many miles is 5 km?", "5, km, mi", "5 km = 3.107 mi",
                      "5 km is about 3.11 miles."),
    "weather": _example("weather", "Is it warm in Lima today?", "Lima, today",
                        "Forecast for Lima today: overcast, 19 °C", "It is mild in Lima today: overcast, 19 °C."),
    "readings": _example("readings", "What does top-p do?", "top-p sampling",
                         "[1] generation-settings.md > Top-p: Top-p keeps the smallest set of tokens whose "
                         "probabilities add up to p.",
                         "Top-p samples only from the most likely tokens whose probabilities add up to p [1]."),
    "shop_order": _example("shop_order", "Where is my order B0001?", "B0001",
                           "Order B0001: delivered on 2 May; items: usb-cable", "Your order B0001 was delivered on 2 May."),
    "shop_stock": _example("shop_stock", "Do you have kettles?", "kettle", "kettle: 3 in stock",
                           "Yes, 3 kettles are in stock."),
    "shop_price": _example("shop_price", "How much is a kettle?", "kettle", "kettle: 19.00 EUR",
                           "A kettle costs 19.00 EUR."),
    "shop_refund": _example("shop_refund", "Please refund my broken order B0001.", "B0001",
                            "Refund requested for order B0001.", "I have requested a refund for order B0001."),
}


class ExpressionArgs(BaseModel):
    expression: str = Field(max_length=ARG_CHARS, description="arithmetic such as 2 * (3 + 4) or 15% of 80")


class UnitsArgs(BaseModel):
    value: float = Field(description="the number to convert")
    from_unit: str = Field(max_length=20, description="the unit it is in, such as km, mi, kg, lb, C, F")
    to_unit: str = Field(max_length=20, description="the unit wanted")


class WeatherArgs(BaseModel):
    city: str = Field(max_length=60)
    day: str = Field("today", max_length=20, description="today or tomorrow")


class QueryArgs(BaseModel):
    query: str = Field(max_length=ARG_CHARS, description="a few keywords")


class OrderArgs(BaseModel):
    order_id: str = Field(max_length=20, description="an order number such as A1001")


class ProductArgs(BaseModel):
    product: str = Field(max_length=60, description="a product name such as desk-fan")


def build_tools(names=TOOL_NAMES, *, shop: Shop | None = None, weather: dict[str, Forecast] | None = None,
                search: Callable | None = None, descriptions: dict[str, str] | None = None) -> list[BaseTool]:
    """The named tools over the given data; ``descriptions`` replaces a tool's description (a learner's)."""
    shop = shop or DEFAULT_SHOP
    table = {_key(city): forecast for city, forecast in (weather or DEFAULT_WEATHER).items()}
    products = {_key(name): (name, product) for name, product in shop.products.items()}
    orders = {_key(order_id): (order_id, order) for order_id, order in shop.orders.items()}

    @tool("calculator", args_schema=ExpressionArgs)
    def calculator(expression: str) -> str:
        """Computes arithmetic exactly: + - * / ^, parentheses, percentages (15% of 80) and sqrt()."""
        try:
            return calc.format_number(calc.calculate(expression))
        except calc.CalculatorError as e:
            raise ToolException(str(e)) from None

    @tool("units", args_schema=UnitsArgs)
    def units_tool(value: float, from_unit: str, to_unit: str) -> str:
        """Converts a value between units of length, mass, volume, time or temperature (km, mi, kg, lb, l, C, F...)."""
        try:
            return units.convert(value, from_unit, to_unit)
        except units.UnitError as e:
            raise ToolException(str(e)) from None

    @tool("weather", args_schema=WeatherArgs)
    def weather_tool(city: str, day: str = "today") -> str:
        """Looks up today's or tomorrow's weather forecast for a city."""
        day = day.strip().lower()
        if day not in ("today", "tomorrow"):
            raise ToolException(f"day must be 'today' or 'tomorrow', not '{day[:20]}'")
        forecast = table.get(_key(city))
        if forecast is None:
            raise ToolException(f"no forecast for '{city[:40]}'; the cities are " + ", ".join(
                c.title() for c in table))
        return f"Forecast for {city.strip().title()} {day}: {getattr(forecast, day)}"

    @tool("readings", args_schema=QueryArgs)
    def readings(query: str) -> str:
        """Searches the course readings and returns the two most relevant passages with their sources."""
        if search is None:
            raise ToolException("the course readings are not available in this run")
        passages = search(query, k=2)
        if not passages:
            return "No passage in the readings matches this query."
        return "\n".join(f"[{n}] {p.source} > {p.heading}: {' '.join(p.text.split())[:280]}"
                         for n, p in enumerate(passages, 1))

    @tool("shop_order", args_schema=OrderArgs)
    def shop_order(order_id: str) -> str:
        """Looks up a shop order by its number: its status, its items and the customer's note."""
        order_id, order = _find(orders, order_id, "order")
        note = f"\nCustomer note: {order.note}" if order.note else ""
        return f"Order {order_id}: {order.status}; items: {', '.join(order.items)}{note}"

    @tool("shop_stock", args_schema=ProductArgs)
    def shop_stock(product: str) -> str:
        """Says how many units of a product the shop has in stock."""
        name, item = _find(products, product, "product")
        return f"{name}: {item.stock} in stock" if item.stock else f"{name}: out of stock"

    @tool("shop_price", args_schema=ProductArgs)
    def shop_price(product: str) -> str:
        """Gives the price of one unit of a product."""
        name, item = _find(products, product, "product")
        return f"{name}: {item.price:.2f} {shop.currency}"

    @tool("shop_refund", args_schema=OrderArgs)
    def shop_refund(order_id: str) -> str:
        """Requests a refund for a whole order. Use it only when the customer asks for a refund."""
        order_id, _ = _find(orders, order_id, "order")
        return f"Refund requested for order {order_id}. (This is a mock shop: nothing was changed.)"

    made = {t.name: t for t in (calculator, units_tool, weather_tool, readings, shop_order, shop_stock, shop_price,
                                shop_refund)}
    descriptions = descriptions or {}
    return [made[n].model_copy(update={"description": descriptions.get(n, made[n].description),
                                       "metadata": {"example": EXAMPLES[n]}}) for n in expand_tools(names)]


def catalogue() -> list[dict]:
    """What ``tutor agent tools --json`` prints: each tool's name, description, arguments and example."""
    return [{"name": t.name, "description": t.description, "args": t.args, "example": t.metadata["example"]}
            for t in build_tools()]


def _key(text: str) -> str:
    """Lookup form: case, spaces, hyphens and underscores ignored ("Desk Fan" finds "desk-fan")."""
    return re.sub(r"[\s_\-]+", "", str(text).strip().strip("\"'`").casefold())


def _find(table: dict, wanted: str, what: str):
    found = table.get(_key(wanted))
    if found is None:
        known = ", ".join(name for name, _ in list(table.values())[:12]) or "none"
        raise ToolException(f"there is no {what} '{str(wanted)[:40]}'; the {what}s are {known}")
    return found
