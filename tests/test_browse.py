"""`curate browse`: the grouped FiftyOne dataset (slices, parsing with class names, poses, verdict tags,
dedupe and filter fields, per-sample run scores) and the App served on 127.0.0.1.

Each test runs FiftyOne in a child process with its own database folder (FIFTYONE_DATABASE_DIR), so no
state is shared with the user's FiftyOne or between tests, and every process it starts (the MongoDB, the
App server) ends with the child: the App test kills its whole process group and checks nothing is left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from report_fixtures import ground_truth_pairs, noisy, write_run

needs_fiftyone = pytest.mark.skipif(importlib.util.find_spec("fiftyone") is None,
                                reason="FiftyOne is not installed (`make browse-deps`); the rest of the suite does not need it")


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp / "fo-db"), "FIFTYONE_DO_NOT_TRACK": "true",
            "FIFTYONE_DATABASE_VALIDATION": "false", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def browsable(curated_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session's dataset with dedupe and filter verdicts, and one run with outputs and per-image scores."""
    from curate.dedupe.command import run_dedupe
    root = tmp_path_factory.mktemp("browse")
    ds = root / "ds"
    shutil.copytree(curated_ds, ds)
    run_dedupe(ds)
    subprocess.run([sys.executable, "-c", "from curate.cli import app; app()", "filter", str(ds)], check=True, capture_output=True)
    pairs, truth = ground_truth_pairs(ds, n=4)
    lpips = [0.1, 0.2, 0.3, 0.4]
    write_run(root / "runs", "good-model", ds=ds, pairs=pairs, images=noisy(truth, lpips), lpips=lpips)
    return {"ds": ds, "runs": root / "runs", "pairs": pairs, "lpips": lpips}


_FACTS = """
import json, sys
from pathlib import Path
from curate.browse import build_dataset
ds = build_dataset(Path(sys.argv[1]), [Path(sys.argv[2])], "t-browse")
ds.group_slice = "human"
human = ds.match_tags("rejected:missing-partner", bool=False)
one = ds.exists("parsing").first()
facts = {"slices": sorted(ds.group_slices), "media": ds.media_type, "persistent": ds.persistent,
         "mask_targets": {k: {str(i): n for i, n in v.items()} for k, v in ds.mask_targets.items()},
         "tags": ds.count_sample_tags(), "fields": sorted(ds.get_field_schema()),
         "pose_points": len(one["pose"].keypoints[0].points) if one["pose"] else 0,
         "parsing_mask": one["parsing"].mask_path, "groups": len(ds.distinct("group.id"))}
ds.group_slice = "article"
facts["article_tags"] = ds.count_sample_tags()
ds.group_slice = "tryon-good-model"
facts["tryon"] = {s["pair_id"]: s["lpips"] for s in ds}
ds.group_slice = "human"
facts["human_lpips"] = {s["pair_id"]: s["lpips_good_model"] for s in ds.exists("lpips_good_model")}
facts["filter_evidence"] = sum(1 for s in ds.exists("filter_evidence").select_fields("filter_evidence"))
facts["dup_distance"] = sum(1 for s in ds.exists("dup_distance").select_fields("dup_distance"))
print("FACTS" + json.dumps(facts))
"""


@needs_fiftyone
def test_grouped_dataset_has_slices_labels_tags_and_scores(browsable: dict, tmp_path: Path) -> None:
    from curate.manifest import Manifest

    out = subprocess.run([sys.executable, "-c", _FACTS, str(browsable["ds"]), str(browsable["runs"])], env=_env(tmp_path),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.split("FACTS", 1)[1])
    m = Manifest.load(browsable["ds"])
    assert facts["media"] == "group" and facts["persistent"]
    assert facts["slices"] == ["article", "human", "tryon-good-model"]
    from curate.labelsets import get_label_set

    label_set = m.humans["label_set"].dropna().iloc[0]
    assert facts["mask_targets"]["parsing"] == {str(i): c for i, c in enumerate(get_label_set(label_set).classes)}
    assert facts["pose_points"] == 18 and Path(facts["parsing_mask"]).is_file()
    # one tag for every ingest rejection and every duplicate (the synthetic set injects both)
    rejected_h = m.humans["reject_reason"].dropna()
    for reason, n in rejected_h.value_counts().items():
        assert facts["tags"].get(f"rejected:{reason}", 0) >= n
    dups = m.humans["dup_group"].notna().sum()
    assert dups > 0 and facts["tags"].get("duplicate", 0) + facts["tags"].get("dup-kept", 0) >= dups
    assert facts["dup_distance"] > 0 and facts["filter_evidence"] > 0
    assert any(t.startswith("dup-group:") for t in facts["tags"])
    filtered = m.pairs["filter_reason"].dropna()
    for reason in filtered.unique():
        assert facts["tags"].get(f"filter:{reason}", 0) >= 1
    # the run's per-image scores, on its slice and on the people
    expected = dict(zip(browsable["pairs"], browsable["lpips"]))
    assert facts["tryon"] == pytest.approx(expected) and facts["human_lpips"] == pytest.approx(expected)
    assert facts["groups"] >= len(m.pairs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_fiftyone
def test_launch_serves_the_app_on_localhost_and_every_process_stops(browsable: dict, tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from curate.cli import app; app()", "browse", str(browsable["ds"]), "--name", "t-launch",
                             "--launch", "--port", str(port)], env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        url, lines, deadline = None, [], time.monotonic() + 600
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("FiftyOne App: "):
                url = line.split(": ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/", "".join(lines)[-3000:]
        page = None
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    page = (response.status, response.read().decode("utf-8", "replace"))
            except OSError:
                time.sleep(1)
        assert page is not None and page[0] == 200 and "<html" in page[1].lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this test started: the CLI, its App server and MongoDB
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for _ in range(60):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(1)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("processes of the browse command outlived it")


def test_without_fiftyone_browse_says_how_to_install(tmp_path: Path) -> None:
    """The command's message when FiftyOne cannot be imported (simulated by a module that raises)."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "fiftyone.py").write_text("raise ImportError('simulated: not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "from curate.cli import app; app()", "browse", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "make browse-deps" in out.stderr and "Traceback" not in out.stderr
