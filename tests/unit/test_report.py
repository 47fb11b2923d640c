"""agent-rl-report and the saved trajectories it reads: the sample kept per step, the plots' numbers, the
page, and the viewer as a real headless Chromium renders it (Debian's chromium-headless-shell)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agent_rl.report import write_report
from agent_rl.report.runs import NotARun, load_runs
from agent_rl.rollout.parsing import parse_action
from agent_rl.rollout.prompts import build_prompt
from agent_rl.training import trajectories

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "chromium-headless-shell"


# ---- the browser, as the e2e test uses it too --------------------------------------------------------
def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    exe = shutil.which(CHROMIUM)
    assert exe, f"{CHROMIUM} is missing; `make install` installs it (apt-get install {CHROMIUM})"
    cmd = [exe, "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def rendered_dom(page: Path, tmp: Path) -> str:
    """The page's DOM after load, with its scripts run (what a person's browser shows)."""
    proc = chromium("--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri(), tmp=tmp)
    assert proc.returncode == 0 and "<body" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def screenshot(page: Path, png: Path, tmp: Path, size: str = "1300,2600") -> Path:
    proc = chromium(
        "--hide-scrollbars", f"--window-size={size}", f"--screenshot={png}", page.resolve().as_uri(), tmp=tmp
    )
    assert proc.returncode == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", proc.stderr[-2000:]
    return png


class Elements(HTMLParser):
    """Every element's tag, attributes and text (the text of its own children, not nested elements')."""

    def __init__(self):
        super().__init__()
        self.found: list[dict] = []
        self.stack: list[dict] = []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.found.append(element)
        if tag not in ("meta", "img", "br", "input", "link"):
            self.stack.append(element)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1]["text"] += data


def elements(html: str) -> list[dict]:
    parser = Elements()
    parser.feed(html)
    return parser.found


def token_spans(html: str) -> list[dict]:
    return [e for e in elements(html) if e["tag"] == "span" and e["attrs"].get("class") == "tok"]


# ---- the saved sample -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from agent_rl.models.tiny_model import build_tiny_model

    return AutoTokenizer.from_pretrained(build_tiny_model())


def test_observation_is_found_in_each_environments_prompt():
    """The viewer's fallback for rows without ``anchor_obs``: the observation as the template quotes it
    (WebShop's adds a full stop)."""
    for env, obs, shown in (
        ("alfworld", "You are in the middle of a room.\n\nYour task is to: put a mug in the sink.", None),
        ("webshop", "Search", "Search."),
        ("scienceworld", "This room is called the kitchen.", None),
    ):
        history = [("You see a door.", "look around")]
        for step, hist in ((0, []), (1, history)):
            content = build_prompt(env, "find a mug", step, hist, obs, ["look", "go north"])[0]["content"]
            assert trajectories.observation_of(content) == (shown or obs)
    assert trajectories.observation_of("no template here") == "no template here"


def rows(groups=3, members=2, turns=(2, 3, 1)):
    """Step rows as the agent loop writes their extra_fields: group g, member m has turns[g] steps."""
    extra = []
    for g in range(groups):
        for m in range(members):
            for t in range(turns[g]):
                extra.append(
                    {
                        "trajectory_id": f"uid-{g}_{m}",
                        "turn": t,
                        "task_type": f"type{g}",
                        "won": float(m == 0),
                        "episode_return": 10.0 * float(m == 0),
                        "step_penalty": 0.1 if t == 0 else 0.0,
                        "episode_length": turns[g],
                        "score": 0.5,
                        "action_valid": t != 0,
                        "invalid_reason": "missing_action_tags" if t == 0 else "ok",
                        "anchor_obs": f"obs g{g} m{m} t{t}",
                    }
                )
    return extra


def test_the_sample_takes_each_groups_first_trajectory_first():
    extra = rows()
    real = [True] * len(extra)
    assert trajectories.pick(extra, real, 4) == ["uid-0_0", "uid-1_0", "uid-2_0", "uid-0_1"]
    real[0] = real[1] = False  # uid-0_0's rows are padding
    assert trajectories.pick(extra, real, 2) == ["uid-0_1", "uid-1_0"]
    returns = trajectories.episode_returns(extra)
    assert returns["uid-0_0"] == pytest.approx(9.9) and returns["uid-1_1"] == pytest.approx(-0.1)


def test_a_step_sample_holds_tokens_entropies_observation_action_validity_and_outcome(tokenizer, tmp_path):
    extra = rows()
    real = [True] * len(extra)
    texts = [f"<think>turn {e['turn']}</think><action>go to desk {i}</action>" for i, e in enumerate(extra)]
    responses = [tokenizer.encode(t) for t in texts]
    prompts = [tokenizer.encode(f"prompt {i}") for i in range(len(extra))]
    entropy = [[0.01 * (i + j) for j in range(len(r) + 3)] for i, r in enumerate(responses)]  # padded
    sample = trajectories.step_sample(
        7,
        "alfworld",
        extra,
        real,
        prompts,
        responses,
        entropy,
        decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
        decode_each=lambda ids: tokenizer.batch_decode([[i] for i in ids]),
        k=2,
        parse=lambda text: parse_action(text, "alfworld"),
    )
    assert sample["step"] == 7 and [t["id"] for t in sample["trajectories"]] == ["uid-0_0", "uid-1_0"]
    first = sample["trajectories"][1]  # group 1: three turns
    assert (first["task_type"], first["won"], first["length"]) == ("type1", True, 3)
    assert first["return"] == pytest.approx(9.9)
    row = next(i for i, e in enumerate(extra) if e["trajectory_id"] == "uid-1_0" and e["turn"] == 1)
    turn = first["turns"][1]
    assert turn["turn"] == 1 and turn["observation"] == "obs g1 m0 t1"
    assert turn["token_ids"] == responses[row] and "".join(turn["tokens"]) == texts[row]
    assert turn["entropy"] == [round(0.01 * (row + j), 4) for j in range(len(responses[row]))]
    assert (turn["action"], turn["valid"], turn["response"]) == (f"go to desk {row}", True, texts[row])
    assert first["turns"][0]["valid"] is False and first["turns"][0]["reason"] == "missing_action_tags"
    path = trajectories.save_step(tmp_path, sample)
    assert path.name == "step_000007.json" and trajectories.read_steps(tmp_path) == [sample]


def test_a_trajectory_row_is_shown_turn_by_turn_with_its_tool_calls_and_results(tokenizer):
    """``agent.rows=trajectory``: one row per episode; the sample cuts it into its turns (each turn's model
    tokens and entropies, not the environment's tokens between them) with each turn's own fields, the tool
    calls and the tool results as blocks of their own."""
    turn_texts = ['<tool_call>{"name": "code_interpreter"}</tool_call>', "<answer>7</answer>"]
    context = tokenizer.encode("<tool_response>7</tool_response>")
    ids, mask, token_turn = [], [], []
    for k, text in enumerate(turn_texts):
        if k:
            ids, mask, token_turn = (
                ids + context,
                mask + [0] * len(context),
                token_turn + [k - 1] * len(context),
            )
        own = tokenizer.encode(text)
        ids, mask, token_turn = ids + own, mask + [1] * len(own), token_turn + [k] * len(own)
    extra = [
        {
            "rows": "trajectory",
            "trajectory_id": "uid-0_0",
            "turn": 0,
            "num_steps": 2,
            "token_turn": token_turn,
            "turn_valid": [True, True],
            "turn_reason": ["ok", "ok"],
            "turn_action": ["code_interpreter({})", "answer: 7"],
            "turn_anchor": ["What is 3+4?", "7"],
            "turn_tool_calls": [['{"name": "code_interpreter", "arguments": {"code": "print(3+4)"}}'], []],
            "turn_tool_results": [["7"], []],
            "episode_return": 1.0,
            "step_penalty": 0.0,
            "won": 1.0,
        }
    ]
    sample = trajectories.step_sample(
        1,
        "math_python",
        extra,
        [True],
        [tokenizer.encode("prompt")],
        [ids],
        [[0.5 if m else 9.0 for m in mask]],
        decode=lambda x: tokenizer.decode(x, skip_special_tokens=True),
        decode_each=lambda x: tokenizer.batch_decode([[i] for i in x]),
        k=1,
        masks=[mask],
    )
    (traj,) = sample["trajectories"]
    first, second = traj["turns"]
    assert first["response"] == turn_texts[0] and second["response"] == turn_texts[1]
    assert first["entropy"] == [0.5] * len(first["token_ids"])  # the model's tokens only
    assert first["tool_calls"] == extra[0]["turn_tool_calls"][0] and first["tool_results"] == ["7"]
    assert (second["action"], second["observation"], second["tool_calls"]) == ("answer: 7", "7", [])
    assert first["prompt"] == "prompt" and second["prompt"] == ""


# ---- the report -------------------------------------------------------------------------------------------
def metrics_line(step: int, **extra) -> str:
    data = {
        "env/success_rate": 0.1 * step,
        "env/success_rate/pick": 0.2 * step,
        "env/return/mean": step - 0.5,
        "env/episode_length/mean": 10.0 - step,
        "actor/entropy": 1.0 / step,
        "entropy_by_turn/0": 0.5 * step,
        "entropy_by_turn/1": 0.25 * step,
        "timing_s/gen": 3.0,
        "timing_s/update_actor": 2.0,
        "timing_s/step": 6.0 + step,
        **extra,
    }
    return json.dumps({"step": step, "data": data}) + "\n"


def make_run(folder: Path, steps=(1, 2, 3), resumed_at: int | None = 2) -> Path:
    """A run folder as agent-rl leaves it; with ``resumed_at`` the first launch's lines are metrics.1.jsonl
    (and its line for that step is a stale one, which the later launch's replaces)."""
    folder.mkdir(parents=True)
    val = {"val-aux/alfworld/all/won/mean@1": 0.75, "val-aux/alfworld/pick/won/mean@1": 1.0}
    lines = {s: metrics_line(s, **(val if s == steps[-1] else {})) for s in steps}
    if resumed_at is None:
        (folder / "metrics.jsonl").write_text("".join(lines.values()))
    else:
        stale = json.dumps({"step": resumed_at, "data": {"env/success_rate": 0.99}}) + "\n"
        (folder / "metrics.1.jsonl").write_text("".join(lines[s] for s in steps if s < resumed_at) + stale)
        (folder / "metrics.jsonl").write_text("".join(lines[s] for s in steps if s >= resumed_at))
    for step in steps:
        turns = [
            {
                "turn": t,
                "observation": f"room {t} <b>not markup</b>",
                "prompt": "the prompt",
                "token_ids": [11, 12, 13],
                "tokens": ["<think>", " go", "</script>"],
                "entropy": [0.0, 0.5 * (t + 1), 2.0],
                "response": "<think> go</script>",
                "action": "go north",
                "valid": t == 0,
                "reason": None if t == 0 else "missing_action_tags",
                # a tool environment's turn: its calls and the tools' answers (none on turn 1)
                "tool_calls": ['{"name": "code_interpreter", "arguments": {"code": "print(6*7)"}}']
                if t == 0
                else [],
                "tool_results": ["42 <i>not markup</i>"] if t == 0 else [],
            }
            for t in range(2)
        ]
        sample = {
            "step": step,
            "env": "alfworld",
            "trajectories": [
                {
                    "id": "u_0",
                    "group": "u",
                    "task_type": "pick",
                    "won": True,
                    "return": 9.9,
                    "score": 1.0,
                    "length": 2,
                    "turns": turns,
                }
            ],
        }
        trajectories.save_step(folder, sample)
    return folder


def test_the_report_plots_the_runs_numbers_and_writes_the_page(tmp_path):
    run = make_run(tmp_path / "outputs" / "alfworld-grpo-none-tiny-s0")
    index = write_report([run])
    out = run / "report"
    assert index == out / "index.html"
    pngs = sorted(p.stem for p in out.glob("*.png"))
    assert pngs == sorted(
        ["success", "success_by_task", "return", "episode_length", "entropy", "entropy_heatmap", "timing"]
    )
    assert all((out / f"{name}.png").read_bytes()[:4] == b"\x89PNG" for name in pngs)
    plots = json.loads((out / "plots.json").read_text())
    label = run.name
    # the later launch's line for step 2 replaced the first launch's stale one
    assert plots["success"][label]["train"] == [[1, 0.1], [2, 0.2], [3, pytest.approx(0.3)]]
    assert plots["success"][label]["validation"] == [[3, 0.75]]
    assert plots["success_by_task"][label]["pick/validation"] == [[3, 1.0]]
    assert plots["return"][label]["env/return/mean"] == [[1, 0.5], [2, 1.5], [3, 2.5]]
    assert plots["entropy_heatmap"][label]["turn 1"] == [[1, 0.25], [2, 0.5], [3, 0.75]]
    assert plots["timing"][label]["other"] == [[1, 2.0], [2, 3.0], [3, 4.0]]  # step - gen - update
    page = index.read_text()
    table = [e for e in elements(page) if e["tag"] == "tr" and "data-step" in e["attrs"]]
    assert [e["attrs"]["data-step"] for e in table] == ["1", "2", "3"]
    cells = [e["text"] for e in elements(page) if e["tag"] == "td"]
    assert "0.750 (step 3)" in cells  # best validation success in the runs' table
    assert "</script>" not in page.split('id="viewer-data">')[1].split("</script>")[0]  # JSON kept whole


def test_several_runs_are_overlaid_and_a_sweep_folder_stands_for_its_runs(tmp_path):
    sweep = tmp_path / "multirun"
    make_run(sweep / "0_alfworld-grpo-empg-tiny-s0", resumed_at=None)
    make_run(sweep / "1_alfworld-grpo-aem-tiny-s0", steps=(1, 2), resumed_at=None)
    index = write_report([sweep], out=tmp_path / "report")
    plots = json.loads((tmp_path / "report" / "plots.json").read_text())
    assert sorted(plots["entropy"]) == ["0_alfworld-grpo-empg-tiny-s0", "1_alfworld-grpo-aem-tiny-s0"]
    data = json.loads(index.read_text().split('id="viewer-data">')[1].split("</script>")[0])
    assert [r["label"] for r in data["runs"]] == sorted(plots["entropy"])


def test_a_folder_that_is_not_a_run_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotARun, match="is not a run folder of agent-rl: it holds no metrics.jsonl"):
        load_runs([tmp_path / "empty"])
    proc = subprocess.run(
        [sys.executable, "-m", "agent_rl.report", str(tmp_path / "nowhere")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"agent-rl-report: {tmp_path / 'nowhere'} is not a folder; give agent-rl-report the folder of a run "
        "(outputs/<run>)."
    ]


def test_the_viewer_renders_coloured_tokens_in_a_real_browser(tmp_path):
    run = make_run(tmp_path / "run")
    index = write_report([run])
    raw = index.read_text()
    assert 'class="tok"' not in raw  # the spans below come from the page's script, run by the browser
    dom = rendered_dom(index, tmp_path)
    spans = token_spans(dom)
    last = trajectories.read_steps(run)[-1]["trajectories"][0]  # the viewer opens on the last step
    assert [s["text"] for s in spans] == [tok for turn in last["turns"] for tok in turn["tokens"]]
    assert [float(s["attrs"]["data-entropy"]) for s in spans] == [
        h for turn in last["turns"] for h in turn["entropy"]
    ]
    colours = [s["attrs"]["style"] for s in spans]
    assert all(c.startswith("background-color: rgb(") for c in colours)
    assert colours[0] == "background-color: rgb(255, 255, 255);"  # 0 nats: white
    assert colours[2] == "background-color: rgb(215, 48, 31);"  # the page's top entropy: red
    texts = {e["attrs"].get("class"): e["text"] for e in elements(dom) if e["tag"] in ("pre", "code", "span")}
    assert texts["observation"] == "room 1 <b>not markup</b>" and texts["action"] == "go north"
    assert "invalid (missing_action_tags)" in dom and "return 9.900" in dom
    # tool calls and tool results: blocks of their own, as text
    blocks = [(e["attrs"].get("class"), e["text"]) for e in elements(dom) if e["tag"] == "pre"]
    assert [b for b in blocks if b[0] in ("tool-call", "tool-result")] == [
        ("tool-call", '{"name": "code_interpreter", "arguments": {"code": "print(6*7)"}}'),
        ("tool-result", "42 <i>not markup</i>"),
    ]
    screenshot(index, tmp_path / "viewer.png", tmp_path)
