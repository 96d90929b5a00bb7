# SPDX-License-Identifier: GPL-2.0-or-later
"""Segmentation on a Dask cluster gives exactly the single-process result.

One LocalCluster (2 worker processes x 1 thread) for the module; a tiny ONNX model made
here (a 3x3 convolution with seeded random weights and a softmax: every output pixel
depends on its neighbours, so a tile read or reflected differently would show); rasters
whose tiles straddle chunk seams (chunks of 96 px, tiles of 64 with overlap 16), with
no-data holes, non-8-bit input and a raster smaller than one chunk.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
import shapely
from onnx import TensorProto, helper, numpy_helper
from osgeo import gdal
from rasterio.windows import Window

distributed = pytest.importorskip("distributed")

from dubai_segmenter.engine.distributed.chunk_task import chunk_probabilities  # noqa: E402
from dubai_segmenter.engine.distributed.plan import ScenePlan, chunk_side  # noqa: E402
from dubai_segmenter.engine.distributed.run import Scene, segment_scenes  # noqa: E402
from dubai_segmenter.engine.distributed.worker import ModelPlugin, worker_predictor  # noqa: E402
from dubai_segmenter.engine.errors import Cancelled  # noqa: E402
from dubai_segmenter.engine.onnx_file import file_sha256, metadata_props  # noqa: E402
from dubai_segmenter.engine.predictors import open_predictor  # noqa: E402
from dubai_segmenter.engine.raster_input import choose_bands, compute_scaling, read_window  # noqa: E402
from dubai_segmenter.engine.segment import SegmentOptions, segment_array, segment_raster  # noqa: E402
from dubai_segmenter.engine.tiling import TileGrid  # noqa: E402
from tests.engine.helpers import colour_metadata  # noqa: E402
from tests.engine.rasters import write_raster  # noqa: E402

TILE, OVERLAP = 64, 16
CHUNK = chunk_side(TILE, OVERLAP, 100)  # 96: two tile strides


def save_conv_onnx(path, seed: int = 0):
    """A dubai_segmenter ONNX export of a 3x3 convolution (3 -> 6 classes) and a softmax."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(0, 2, (6, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.5, 6).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["logits"], pads=[1, 1, 1, 1]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, TILE, TILE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 6, TILE, TILE])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in metadata_props(colour_metadata(TILE, OVERLAP), TILE, "").items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_conv_onnx(tmp_path_factory.mktemp("model") / "conv.onnx")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """name -> input path: seams (uint8, 250 x 300, no-data hole), stretched (uint16 with a
    nodata value and a hole, 170 x 130), small (uint8, 60 x 90: less than one chunk)."""
    folder = tmp_path_factory.mktemp("scenes")
    rng = np.random.default_rng(1)
    seams = rng.integers(1, 256, (3, 250, 300), dtype=np.uint8)
    seams[:, 100:160, 90:200] = 0
    stretched = rng.integers(100, 4000, (3, 170, 130)).astype(np.uint16)
    stretched[:, 40:90, 10:60] = 0
    small = rng.integers(0, 256, (3, 60, 90), dtype=np.uint8)
    return {
        "seams": write_raster(folder / "seams.tif", seams, nodata=0),
        "stretched": write_raster(folder / "stretched.tif", stretched, nodata=0),
        "small": write_raster(folder / "small.tif", small),
    }


@pytest.fixture(scope="module")
def references(tmp_path_factory, scenes, model):
    """The single-process results (all cores for ONNX Runtime, as a user runs it)."""
    folder = tmp_path_factory.mktemp("single")
    predictor = open_predictor(model)
    options = SegmentOptions(confidence=True)
    return {name: segment_raster(path, predictor, folder / f"{name}.tif", options).output_path
            for name, path in scenes.items()}


def _probabilities_on_worker(plan, chunk):
    return chunk_probabilities(plan, chunk, worker_predictor(plan.model_sha256, plan.grid.tile_size))


@pytest.mark.parametrize("name", ["seams", "stretched", "small"])
def test_probabilities_are_bitwise_the_single_process_ones(client, scenes, model, name):
    path = scenes[name]
    predictor = open_predictor(model)
    with rasterio.open(path) as source:
        bands = choose_bands(source, None, 3)
        scaling = compute_scaling(source, bands, predictor.metadata.input_scale)
        pixels, valid = read_window(source, bands, Window(0, 0, source.width, source.height))
        grid = TileGrid.for_raster(source.height, source.width, TILE, OVERLAP)
    expected = segment_array(scaling.apply(pixels), predictor, TILE, OVERLAP, valid=valid)

    plan = ScenePlan(str(path), bands, scaling, grid, CHUNK, 1, False, file_sha256(model))
    client.register_plugin(ModelPlugin(model, TILE, {}))
    futures = client.map(_probabilities_on_worker, [plan] * len(plan.chunks), plan.chunks, pure=False)
    got = np.zeros_like(expected)
    for chunk, part in zip(plan.chunks, client.gather(futures)):
        got[chunk.row : chunk.row + chunk.height, chunk.col : chunk.col + chunk.width] = part
    assert len(plan.chunks) == {"seams": 12, "stretched": 4, "small": 1}[name]
    assert (~valid).any() == (name != "small")
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def _describe(path):
    """Everything a user sees in a classified GeoTIFF: pixels, overviews, legend, tags, grid."""
    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    table = band.GetColorTable()
    return {
        "pixels": dataset.ReadAsArray(),
        "overviews": [band.GetOverview(i).ReadAsArray() for i in range(band.GetOverviewCount())],
        "colours": [table.GetColorEntry(i) for i in range(table.GetCount())],
        "names": band.GetCategoryNames(),
        "descriptions": [dataset.GetRasterBand(i + 1).GetDescription() for i in range(dataset.RasterCount)],
        "nodata": band.GetNoDataValue(),
        "grid": (dataset.GetGeoTransform(), dataset.GetProjection()),
        "block": band.GetBlockSize(),
    }


def assert_same_file(got, expected):
    got, expected = _describe(got), _describe(expected)
    assert got.keys() == expected.keys()
    for key in got:
        if key in ("pixels", "overviews"):
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(expected[key]), err_msg=key)
        else:
            assert got[key] == expected[key], key


def test_many_scenes_on_two_workers_give_the_single_process_files(client, scenes, references, model, tmp_path):
    jobs = [Scene(path, tmp_path / f"{name}.tif") for name, path in scenes.items()]
    jobs.append(Scene(tmp_path / "missing.tif", tmp_path / "missing-out.tif"))
    fractions = []
    done = segment_scenes(client, jobs, model, SegmentOptions(confidence=True), chunk=100,
                          progress=lambda f, m: fractions.append(f))
    for scene, name in zip(done, scenes):
        assert scene.error is None, scene.error
        assert_same_file(scene.output_path, references[name])
        with rasterio.open(references[name]) as reference, rasterio.open(scene.output_path) as output:
            got, expected = output.tags(), reference.tags()
        how = json.loads(got.pop("SEGMENTATION"))
        assert how == json.loads(expected.pop("SEGMENTATION")) | {"cluster": how["cluster"]}  # + how it ran
        assert got == expected and how["cluster"].startswith(f"{len(scene.plan.chunks)} chunks of 96 px")
    assert "input raster not found" in done[-1].error and not (tmp_path / "missing-out.tif").exists()
    assert len(set().union(*(s.worker_pids for s in done))) == 2
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.tif{x}" for n in scenes for x in ("", ".aux.xml"))


def test_a_processing_resolution_gives_the_single_process_file(client, scenes, model, tmp_path):
    """Tiles read from the resampled input on the workers, classes brought back to the input grid."""
    options = SegmentOptions(confidence=True, resolution=0.45)  # the input has 0.3 m pixels
    reference = segment_raster(scenes["seams"], open_predictor(model), tmp_path / "single.tif", options)
    (scene,) = segment_scenes(client, [Scene(scenes["seams"], tmp_path / "cluster.tif")], model, options, chunk=100)
    assert scene.error is None and (scene.plan.grid.height, scene.plan.grid.width) == (167, 200)
    assert len(scene.plan.chunks) == 6
    assert_same_file(scene.output_path, reference.output_path)


def test_a_scene_whose_tasks_fail_is_reported_and_the_others_are_written(client, scenes, references, model, tmp_path):
    """A GeoTIFF with one corrupted block: its header and block table pass on the client, the
    block fails to decode on a worker. (A truncated file is refused on the client already.)"""
    damaged = write_raster(tmp_path / "damaged.tif", np.ones((3, 300, 300), np.uint8), tiled=True,
                           blockxsize=64, blockysize=64, compress="deflate", interleave="band")
    dataset = gdal.Open(str(damaged))
    offset = int(dataset.GetRasterBand(1).GetMetadataItem("BLOCK_OFFSET_3_3", "TIFF"))
    size = int(dataset.GetRasterBand(1).GetMetadataItem("BLOCK_SIZE_3_3", "TIFF"))
    dataset = None
    with open(damaged, "r+b") as file:
        file.seek(offset)
        file.write(b"\xff" * size)  # not a deflate stream
    broken, good = segment_scenes(
        client, [Scene(damaged, tmp_path / "broken.tif"), Scene(scenes["small"], tmp_path / "small.tif")],
        model, SegmentOptions(confidence=True), chunk=100,
    )
    assert f"{damaged} is damaged: rows " in broken.error and "could not be read" in broken.error
    assert not broken.output_path.exists()
    assert list(tmp_path.glob(".broken.tif.parts-*"))  # its finished parts are kept for a rerun
    assert good.error is None
    assert_same_file(good.output_path, references["small"])


def test_workers_run_onnx_runtime_only(client, model):
    client.register_plugin(ModelPlugin(model, TILE, {}))
    assert not any(client.run(lambda: "tensorflow" in __import__("sys").modules).values())


def test_cancelling_leaves_no_output_and_no_parts(client, scenes, model, tmp_path):
    with pytest.raises(Cancelled):
        segment_scenes(client, [Scene(scenes["seams"], tmp_path / "out.tif")], model, chunk=100,
                       cancel=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_a_rerun_after_a_crash_reuses_finished_parts(client, scenes, references, model, tmp_path):
    def crash_after_some_parts(fraction, message):
        # Reported after each saved part, whatever the pace of the workers (a cancel check
        # may come only after every part is in, on a fast machine).
        parts = [p for d in tmp_path.glob(".out.tif.parts-*") for p in d.glob("*.tif")]
        if len(parts) >= 3:
            raise RuntimeError("simulated crash of the client")

    options = SegmentOptions(confidence=True)
    with pytest.raises(RuntimeError, match="simulated crash"):
        segment_scenes(client, [Scene(scenes["seams"], tmp_path / "out.tif")], model, options, chunk=100,
                       progress=crash_after_some_parts)
    assert not (tmp_path / "out.tif").exists()
    (scene,) = segment_scenes(client, [Scene(scenes["seams"], tmp_path / "out.tif")], model, options, chunk=100)
    assert 3 <= scene.reused_parts < 12
    assert_same_file(scene.output_path, references["seams"])
    assert not list(tmp_path.glob(".out.tif.parts-*"))


def test_a_worker_killed_mid_run_changes_nothing(client, scenes, references, model, tmp_path):
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one_worker(fraction, message):
        if not killed and fraction > 0:  # the first part is in; others run or wait on the workers
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    (scene,) = segment_scenes(client, [Scene(scenes["seams"], tmp_path / "out.tif")], model,
                              SegmentOptions(confidence=True), chunk=50, progress=kill_one_worker)
    assert killed and scene.error is None
    assert_same_file(scene.output_path, references["seams"])
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_command_line_with_a_scheduler_matches_and_reports_a_failed_scene(client, scenes, references, model, tmp_path,
                                                                          capsys):
    from dubai_segmenter.engine.cli import EXIT_FAILED, main

    (tmp_path / "broken.tif").write_text("not a raster")
    out = tmp_path / "out"
    out.mkdir()
    code = main(["segment", str(scenes["seams"]), str(scenes["small"]), str(tmp_path / "broken.tif"),
                 "--model", str(model), "--out-dir", str(out), "--confidence", "--scheduler", client.scheduler.address,
                 "--chunk", "100", "--progress", "lines"])
    printed = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "PROGRESS 100.0 chunk 13/13" in printed.out and printed.out.count("Wrote ") == 2
    assert f"FAILED {tmp_path / 'broken.tif'}: " in printed.err and "not a raster" in printed.err
    assert [line for line in printed.err.splitlines() if line.startswith("ERROR: ")] == [
        "ERROR: 1 of 3 scenes failed (listed above)"]
    for name in ("seams", "small"):
        assert_same_file(out / f"{name}.tif", references[name])
    assert sorted(p.name for p in out.iterdir()) == ["seams.tif", "seams.tif.aux.xml", "small.tif", "small.tif.aux.xml"]


def test_many_scenes_cancelled_on_a_cluster_keep_the_finished_one_and_say_so(client, scenes, model, tmp_path, capsys,
                                                                            monkeypatch):
    """Ctrl-C right after the first scene is assembled: it stays, the other leaves no output and no parts."""
    from dubai_segmenter.engine.cli import EXIT_CANCELLED, main
    from dubai_segmenter.engine.distributed import run

    real, assembled = run._assemble, []

    def ctrl_c_after_the_first_scene(scene, *args):
        real(scene, *args)
        assembled.append(scene.output_path)
        if len(assembled) == 1:
            signal.raise_signal(signal.SIGINT)  # to the command's own handler, as a Ctrl-C

    monkeypatch.setattr(run, "_assemble", ctrl_c_after_the_first_scene)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["segment", str(scenes["seams"]), str(scenes["small"]), "--model", str(model), "--out-dir", str(out),
                 "--scheduler", client.scheduler.address, "--chunk", "100", "--progress", "none"])
    err = capsys.readouterr().err
    assert code == EXIT_CANCELLED and len(assembled) == 1
    (kept,) = assembled
    assert err.strip().splitlines()[-1] == (
        f"ERROR: cancelled: 1 of 2 scenes finished and kept ({kept}); the other 1 was not written")
    assert sorted(p.name for p in out.iterdir()) == [kept.name, f"{kept.name}.aux.xml"]


def test_an_unreachable_scheduler_is_bad_input_in_one_sentence(scenes, model, tmp_path, capsys, monkeypatch):
    from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, main
    from dubai_segmenter.engine.distributed import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code = main(["segment", str(scenes["small"]), "--model", str(model), "--out-raster", str(tmp_path / "out.tif"),
                 "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT
    assert err == [f"ERROR: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s; "
                   "check the address and that 'dask scheduler' is running there"]
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_on_a_local_cluster_exits_3_and_leaves_nothing(model, tmp_path):
    """Ctrl-C reaches the whole process group (the command and its local workers)."""
    rng = np.random.default_rng(5)
    source = write_raster(tmp_path / "big.tif", rng.integers(0, 256, (3, 1500, 1500), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-m", "dubai_segmenter", "segment", str(source), "--model", str(model),
         "--out-raster", str(out / "classes.tif"), "--cluster", "local:2", "--chunk", "50", "--progress", "lines"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, start_new_session=True,
    )
    for line in child.stdout:
        if " chunk " in line:  # parts are being made
            break
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 3, err
    assert "ERROR: cancelled: no output was written" in err
    assert list(out.iterdir()) == []


def test_polygons_of_a_cluster_run_are_those_of_a_local_run(client, scenes, model, tmp_path, capsys):
    """--out-vector on a cluster: strips of the assembled raster traced on the workers, seams joined here."""
    from osgeo import ogr

    from dubai_segmenter.engine.cli import EXIT_OK, main

    def features(path):
        dataset = ogr.Open(str(path))
        layer = dataset.GetLayer(0)
        return sorted((f.GetField("class_id"), f.GetGeometryRef().ExportToWkb()) for f in layer)

    for name, extra in (("local", []), ("cluster", ["--scheduler", client.scheduler.address, "--chunk", "100"])):
        code = main(["segment", str(scenes["seams"]), "--model", str(model),
                     "--out-raster", str(tmp_path / f"{name}.tif"), "--out-vector", str(tmp_path / f"{name}.gpkg"),
                     "--classes", "land,road", *extra])
        assert code == EXIT_OK, capsys.readouterr().err
    local, cluster = features(tmp_path / "local.gpkg"), features(tmp_path / "cluster.gpkg")
    assert cluster == local and len(local) > 10


def test_strips_traced_on_the_workers_give_the_polygons_of_a_local_vectorize(client, tmp_path, monkeypatch):
    """Regions across seams (strips of 7 rows), holes, nodata and min-area: the same features."""
    from dubai_segmenter.engine import vectorize
    from dubai_segmenter.engine.distributed.polygons import trace_on_cluster
    from tests.engine.test_vectorize import PIXEL_H, PIXEL_W, read_layer, write_classified

    rng = np.random.default_rng(4)  # blobs of 3 x 3 (classes 0-2 chosen, 3 not), one-pixel holes, nodata
    values = np.kron(rng.integers(0, 4, (30, 20)), np.ones((3, 3), np.uint8)).astype(np.uint8)
    values[rng.random(values.shape) < 0.1] = 3
    values[rng.random(values.shape) < 0.03] = 255
    raster = write_classified(tmp_path / "classes.tif", values)
    min_area = 4 * PIXEL_W * PIXEL_H

    def features(path):
        return sorted((f["class_id"], f["class_name"], f["area"], f["perimeter"], f["geometry"].wkb)
                      for f in read_layer(path))

    local = vectorize.vectorize_classes(raster, tmp_path / "local.gpkg", classes=[0, 1, 2], min_area=min_area)
    every = vectorize.vectorize_classes(raster, tmp_path / "every.gpkg", classes=[0, 1, 2])

    def not_here(*_):
        raise AssertionError("a strip was traced on the client")

    monkeypatch.setattr(vectorize, "trace_strip", not_here)
    fractions = []
    cluster = vectorize.vectorize_classes(raster, tmp_path / "cluster.gpkg", classes=[0, 1, 2], min_area=min_area,
                                          block_rows=7, tracer=trace_on_cluster(client, in_flight=3),
                                          progress=lambda f, m: fractions.append(f))
    expected = features(local.output_path)
    assert features(cluster.output_path) == expected and cluster.polygon_counts == local.polygon_counts
    assert fractions[-1] == 1.0 and len(fractions) > 10
    geometries = [shapely.from_wkb(f[-1]) for f in expected]
    assert any(g.interiors for g in geometries)  # holes
    assert sum(g.bounds[3] - g.bounds[1] > 7 * PIXEL_H for g in geometries) > 5  # across seams
    assert sum(every.polygon_counts.values()) > sum(local.polygon_counts.values())  # min-area dropped some
    with rasterio.open(raster) as source:
        assert (source.read(1) == 255).any()  # nodata pixels


def test_a_scheduler_without_workers_is_bad_input_in_one_sentence(scenes, model, tmp_path, capsys, monkeypatch):
    from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, main
    from dubai_segmenter.engine.distributed import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        code = main(["segment", str(scenes["small"]), "--model", str(model), "--out-raster", str(tmp_path / "out.tif"),
                     "--scheduler", empty.scheduler_address])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT
    assert err == [f"ERROR: the Dask scheduler at {empty.scheduler_address} has no workers; "
                   f"start some with 'dask worker {empty.scheduler_address}'"]
    assert list(tmp_path.iterdir()) == []
