"""WebShop's pages and navigation in text mode (``web_agent_text_env.py`` + ``templates/``).

A ``Session`` is one shopper on one goal. Each page is rendered as WebShop's simple text mode shows
it: the page's visible texts joined by `` [SEP] ``, and a table of clickables (lower-cased button
texts, product asins and option values). The pages:

- search:  ``WebShop [SEP] Instruction: [SEP] <goal> [SEP] Search``
- results: ``Instruction: [SEP] <goal> [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP]
  [< Prev [SEP]] Next > [SEP] <asin> [SEP] <title> [SEP] <price> ...`` (10 per page, 50 at most)
- item:    ``... Back to Search [SEP] < Prev [SEP] <option name> [SEP] <value> ... [SEP] <title>
  [SEP] Price: $x [SEP] Rating: r [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now``
- description / features / reviews (/ attributes) sub-pages: ``... Back to Search [SEP] < Prev
  [SEP] <content>``
- done: the score.

Navigation follows WebShop's ``SimServer.receive``: ``< Prev`` goes from results to the previous
results page, from an item to its results page, from a sub-page to its item; ``Back to Search``
starts over; a new search or a return to the results clears the chosen options; ``Buy Now`` ends
the episode with the reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent_rl.envs.webshop.goals import Goal
from agent_rl.envs.webshop.reward import get_reward
from agent_rl.envs.webshop.search import SEARCH_RETURN_N
from agent_rl.envs.webshop.world import World

PRODUCT_WINDOW = 10
SEP = " [SEP] "

BUY_NOW = "Buy Now"
NEXT_PAGE = "Next >"
PREV_PAGE = "< Prev"
BACK_TO_SEARCH = "Back to Search"
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")

_ACTION = re.compile(r"(.+)\[(.+)\]")


def parse_action(action: str) -> tuple[str, str | None]:
    """WebShop's parser: ``name[arg]`` -> (name, lower-cased arg); anything else -> (text, None)."""
    m = _ACTION.match(action)
    if m is None:
        return action, None
    name, arg = m.groups()
    return name, arg.lower()


@dataclass
class Page:
    """A rendered page: its text segments and what can be clicked on it."""

    kind: str  # search | results | item | sub | done
    segments: list[str]
    # lower-cased clickable text -> (what it is, payload): ("button", ""), ("product", asin),
    # ("option", option name)
    clickables: dict[str, tuple[str, str]]
    has_search_bar: bool = False

    @property
    def text(self) -> str:
        return SEP.join(s.strip() for s in self.segments if s.strip())


@dataclass
class Session:
    """One shopping episode: the goal, where the shopper is, and what they chose."""

    world: World
    goal: Goal
    show_attrs: bool = False
    kind: str = "search"
    keywords: str = ""
    hits: list[int] = field(default_factory=list)
    page_no: int = 1
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub_page: str = ""
    reward: float = 0.0
    reward_info: dict[str, Any] = field(default_factory=dict)
    page: Page | None = None

    def __post_init__(self) -> None:
        self.page = self._render()

    # ----- actions -----------------------------------------------------------------------------
    def search(self, keywords: str) -> None:
        """Run a search (allowed from any page, as in WebShop) and show results page 1."""
        self.keywords = keywords
        self.hits = self.world.engine.search(keywords, SEARCH_RETURN_N)
        self._show_results(1)

    def click(self, name: str) -> bool:
        """Click a clickable (lower-cased text) of the current page; True when that ended the episode."""
        what, payload = self.page.clickables[name]
        if name == BUY_NOW.lower():
            self._buy()
            return True
        if name == BACK_TO_SEARCH.lower():
            self.kind, self.keywords, self.hits, self.page_no = "search", "", [], 1
            self.asin, self.options = None, {}
        elif name == NEXT_PAGE.lower() and self.kind == "results":
            self._show_results(self.page_no + 1)
        elif name == PREV_PAGE.lower() and self.kind == "results":
            self._show_results(self.page_no - 1)
        elif name == PREV_PAGE.lower() and self.kind == "sub":
            self.kind = "item"
        elif name == PREV_PAGE.lower() and self.kind == "item":
            self._show_results(self.page_no)
        elif name in (s.lower() for s in SUB_PAGES):
            self.kind, self.sub_page = "sub", name
        elif what == "product":
            self.kind, self.asin = "item", payload
        elif what == "option":
            self.kind = "item"
            self.options[payload] = name
        self.page = self._render()
        return False

    def _show_results(self, page_no: int) -> None:
        self.kind, self.page_no, self.asin, self.options = "results", page_no, None, {}
        self.page = self._render()

    def _buy(self) -> None:
        product = self.world.by_asin[self.asin]
        self.reward, self.reward_info = get_reward(
            product, self.goal, self.world.prices[self.asin], self.options, self.world.nouns
        )
        self.kind = "done"
        self.page = self._render()

    # ----- rendering ---------------------------------------------------------------------------
    def _render(self) -> Page:
        instruction = ["Instruction:", self.goal.instruction_text]
        back = {BACK_TO_SEARCH.lower(): ("button", "")}
        if self.kind == "search":
            return Page("search", ["WebShop", *instruction, "Search"], {"search": ("button", "")}, True)
        if self.kind == "results":
            segs = [*instruction, BACK_TO_SEARCH, f"Page {self.page_no} (Total results: {len(self.hits)})"]
            clicks = dict(back)
            if self.page_no > 1:
                segs.append(PREV_PAGE)
                clicks[PREV_PAGE.lower()] = ("button", "")
            segs.append(NEXT_PAGE)
            clicks[NEXT_PAGE.lower()] = ("button", "")
            start = (self.page_no - 1) * PRODUCT_WINDOW
            for idx in self.hits[start : start + PRODUCT_WINDOW]:
                p = self.world.products[idx]
                segs += [p.asin, p.title, p.price_tag]
                clicks[p.asin.lower()] = ("product", p.asin)
            return Page("results", segs, clicks)
        if self.kind == "done":
            return Page(
                "done",
                ["Thank you for shopping with us!", "Your score (min 0.0, max 1.0)", str(self.reward)],
                {},
            )
        p = self.world.by_asin[self.asin]
        segs = [*instruction, BACK_TO_SEARCH, PREV_PAGE]
        clicks = {**back, PREV_PAGE.lower(): ("button", "")}
        if self.kind == "sub":
            segs += self._sub_page_text(p)
            return Page("sub", segs, clicks)
        buttons = [s for s in SUB_PAGES if s != "Attributes" or self.show_attrs] + [BUY_NOW]
        for b in buttons:
            clicks[b.lower()] = ("button", "")
        for name, values in p.options.items():
            segs.append(name)
            segs += values
            for v in values:
                clicks[v] = ("option", name)
        segs += [p.title, f"Price: {p.price_tag}", f"Rating: {p.rating}", *buttons]
        return Page("item", segs, clicks)

    def _sub_page_text(self, p) -> list[str]:
        if self.sub_page == "description":
            return [p.description]
        if self.sub_page == "features":
            return list(p.bullets)
        if self.sub_page == "reviews":
            out = []
            for r in p.reviews:
                out += [f'"{r["title"]}"', str(r["score"]), r["body"]]
            return out
        return [*p.attributes, p.category, p.query, p.product_category]
