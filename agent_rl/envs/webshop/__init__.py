"""WebShop (Yao et al., 2022) in its text mode, re-implemented offline.

An agent gets a shopping instruction, searches a product catalog, browses result pages (10 per
page, ``Next >``/``< Prev``), opens products (options, ``Description``/``Features``/``Reviews``
sub-pages, ``< Prev``, ``Back to Search``) and ends the episode with ``Buy Now``; the reward
scores the purchase against the goal's attributes, options, price bound and product type with
WebShop's formula (see ``reward``). Actions are ``search[<query>]`` and ``click[<text>]``;
observations are WebShop's simple text mode, page texts joined by `` [SEP] ``.

Modules: ``env`` (``WebShopEnv``, the ``TextEnv``), ``engine`` (pages and navigation),
``search`` (BM25 with bm25s), ``analyzer`` (Lucene-like tokenizer, Porter stemmer), ``goals``
(synthetic/human goals, price bounds, splits), ``reward``, ``fuzz`` (thefuzz's matching, via
rapidfuzz), ``nouns`` (title nouns: spaCy or a heuristic), ``catalog`` (shipped catalog and
WebShop's data files), ``world`` (a process-wide loaded world). ``scripts/prepare_webshop.py``
downloads WebShop's data files.

Data: ``WebShopEnv(data_dir=...)`` or ``$WEBSHOP_DATA`` names a folder of WebShop's own files;
``catalog="small"`` (default) loads ``items_shuffle_1000.json`` + ``items_ins_v2_1000.json`` (the
1,000-product set the papers trained on, verl-agent's ``use_small=True``), ``catalog="full"``
``items_shuffle.json`` + ``items_ins_v2.json``; both need ``items_human_ins.json`` (see ``catalog``).
Without either, the shipped catalog ``data/catalog.json`` (generated deterministically by
``scripts/make_webshop_catalog.py``): 480 products of 40 product types in WebShop's five
categories, 3,218 synthetic goals (500 test, 2,718 train).

Splits: goals are shuffled with seed 233 as in WebShop; test = goals[0:500] and train = goals[500:],
as verl-agent and EPO use them (``num_test_goals`` moves the boundary); eval (alias dev) =
goals[500:1500] is WebShop's own dev range, inside train. ``reset`` takes
``{"name": "webshop", "split": "train", "goal_idx": i}`` with ``i`` counted within the split.
``info``: ``won`` (bought with reward exactly 1.0), ``score`` (the 0-1 reward once bought, else
0), ``task``, ``admissible_actions`` (``search[<your query>]`` where there is a search bar, then
``click[x]`` per clickable, ``click[search]`` on the search page included, as verl-agent lists
them), ``task_type`` (the goal product's category), plus ``valid_action``, ``page``,
``goal_index``, ``goal``, and on purchase ``purchased`` and ``reward_info`` (the reward's parts).

Differences from WebShop:

- Catalog: without WebShop's files (which need a download: ``scripts/prepare_webshop.py``), our own
  480 generated products stand in for WebShop's Amazon scrape.
- Search: BM25 with ``bm25s`` (Lucene BM25, k1=0.9, b=0.4, Lucene's English stop words, a
  pure-Python Porter stemmer) instead of pyserini/Lucene; same documents, same 50-result cap;
  rankings can differ slightly (tokenizer details), ties are broken by catalog order.
- Type reward: title nouns come from spaCy's ``en_core_web_sm`` where it is installed
  (``pip install -e .[webshop-spacy]``, spaCy 3.8 rather than WebShop's 3.3 / verl-agent's 3.7),
  else from a deterministic heuristic (``noun_extractor``; ``nouns`` gives how often they differ).
- Fuzzy matching: thefuzz >= 0.20 (rapidfuzz); WebShop pins thefuzz 0.19.0, which may have used
  difflib (``fuzz`` gives how little that changes).
- Prices: ranged prices and goal price bounds are drawn from ``random.Random(seed)`` (WebShop
  draws them from the unseeded global generator, so its goal texts varied between processes).
- Reviews and ratings: the shipped catalog has reviews and a rating, shown on the ``Reviews``
  sub-page and as ``Rating:``; WebShop never loaded its reviews (empty page, ``Rating: N.A.``),
  and still does not for its own data files.
- The done page shows only the thank-you line and the score (WebShop's page also carried
  hidden goal details and an MTurk code).
- Leading/trailing spaces of an action are ignored. Invalid actions leave the page unchanged with
  reward 0, as in WebShop; ``invalid_action_feedback=True`` (off by default) appends a reason.
- Goal shuffle: always seed 233 (WebShop, EPO); verl-agent since mid-2025 shuffles with each worker's
  seed (``goals`` explains why that is not reproduced).
- After ``Buy Now`` the episode stays done (WebShop's gym env reset itself to a random goal).
- ``max_steps`` (optional) truncates an episode with reward 0; WebShop has no step limit.
- Kept on purpose, as in WebShop: ``Next >`` is shown on every results page (past the last
  one it leads to an empty page), searching works from any page, the simple text mode does not
  mark chosen options, and synthetic goal options are matched against ``"name value"`` (so
  "large" satisfies "size: x-large").
"""

from agent_rl.envs.webshop.env import SEARCH_ACTION, WebShopEnv, split_sizes

__all__ = ["SEARCH_ACTION", "WebShopEnv", "split_sizes"]
