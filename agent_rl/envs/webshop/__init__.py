"""WebShop (Yao et al., 2022) in its text mode, re-implemented offline.

An agent gets a shopping instruction, searches a product catalog, browses result pages (10 per
page, ``Next >``/``< Prev``), opens products (options, ``Description``/``Features``/``Reviews``
sub-pages, ``< Prev``, ``Back to Search``) and ends the episode with ``Buy Now``; the reward
scores the purchase against the goal's attributes, options, price bound and product type with
WebShop's formula (see ``reward``). Actions are ``search[<query>]`` and ``click[<text>]``;
observations are WebShop's simple text mode, page texts joined by `` [SEP] ``.

Modules: ``env`` (``WebShopEnv``, the ``TextEnv``), ``engine`` (pages and navigation),
``search`` (BM25 with bm25s), ``analyzer`` (Lucene-like tokenizer, Porter stemmer), ``goals``
(synthetic/human goals, price bounds, splits), ``reward``, ``fuzz`` (thefuzz-compatible
matching), ``nouns`` (title nouns), ``catalog`` (shipped catalog and WebShop's data files),
``world`` (a process-wide loaded world).

Data: by default the shipped catalog ``data/catalog.json`` (generated deterministically by
``scripts/make_webshop_catalog.py``): 480 products of 40 product types in WebShop's five
categories, 3,218 synthetic goals (500 test, 1,000 eval, 1,718 train). ``WebShopEnv(data_dir=...)``
or ``$WEBSHOP_DATA`` loads WebShop's own files instead (``items_shuffle[_1000].json``,
``items_ins_v2[_1000].json``, ``items_human_ins.json``).

Splits: goals are shuffled with seed 233 as in WebShop; test = goals[0:500], eval (alias dev) =
goals[500:1500], train = goals[1500:], as WebShop defines them. (verl-agent and EPO instead train
on goals[500:], i.e. eval + train, and test on goals[0:500].) ``reset`` takes
``{"name": "webshop", "split": "train", "goal_idx": i}`` with ``i`` counted within the split.
``info``: ``won`` (bought with reward exactly 1.0), ``score`` (the 0-1 reward once bought, else
0), ``task``, ``admissible_actions`` (``search[<your query>]`` on the search page, then
``click[x]`` per clickable, as verl-agent lists them), ``task_type`` (the goal product's
category), plus ``valid_action``, ``page``, ``goal_index``, ``goal``, and on purchase
``purchased`` and ``reward_info`` (the reward's parts).

Differences from WebShop:

- Catalog: our own 480 generated products, not WebShop's 1.18M (or 1000-product) Amazon
  scrape, which cannot be downloaded here; WebShop's files load when a user has them.
- Search: BM25 with ``bm25s`` (Lucene BM25, k1=0.9, b=0.4, Lucene's English stop words, a
  pure-Python Porter stemmer) instead of pyserini/Lucene; same documents, same 50-result cap;
  rankings can differ slightly (tokenizer details), ties are broken by catalog order.
- Type reward: title nouns come from a deterministic heuristic instead of spaCy
  ``en_core_web_sm`` (not installable here); ``noun_extractor="spacy"`` restores the original
  where the model is installed.
- Prices: ranged prices and goal price bounds are drawn from ``random.Random(seed)`` (WebShop
  draws them from the unseeded global generator, so its goal texts varied between processes).
- Reviews and ratings: the shipped catalog has reviews and a rating, shown on the ``Reviews``
  sub-page and as ``Rating:``; WebShop never loaded its reviews (empty page, ``Rating: N.A.``),
  and still does not for its own data files.
- The done page shows only the thank-you line and the score (WebShop's page also carried
  hidden goal details and an MTurk code).
- ``click[search]`` on the search page (a no-op in WebShop, listed by verl-agent) is not
  listed among the admissible actions; it remains a no-op.
- Invalid actions leave the page unchanged with reward 0 as in WebShop, but by default a
  one-line reason is appended to the observation (``invalid_action_feedback=False`` removes it);
  leading/trailing spaces of an action are ignored.
- After ``Buy Now`` the episode stays done (WebShop's gym env reset itself to a random goal).
- ``max_steps`` (optional) truncates an episode with reward 0; WebShop has no step limit.
- Kept on purpose, as in WebShop: ``Next >`` is shown on every results page (past the last
  one it leads to an empty page), searching works from any page, the simple text mode does not
  mark chosen options, and synthetic goal options are matched against ``"name value"`` (so
  "large" satisfies "size: x-large").
"""

from agent_rl.envs.webshop.env import SEARCH_ACTION, WebShopEnv, split_sizes

__all__ = ["SEARCH_ACTION", "WebShopEnv", "split_sizes"]
