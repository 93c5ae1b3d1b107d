"""Reading a SavedModel's op types from saved_model.pb, without loading.

Only functions a caller can reach (the object graph's concrete functions
and everything they call) are inspected; the checkpoint save/restore
functions TensorFlow itself runs to read `variables/` are not.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

# Ops that read or write files, call back into Python, print to a stream
# or reach other hosts.
DENIED_OPS = frozenset(
    """
    ReadFile WriteFile MatchingFiles MatchingFilesDataset
    Save SaveV2 SaveSlices Restore RestoreV2 RestoreSlice MergeV2Checkpoints
    PyFunc PyFuncStateless EagerPyFunc Print PrintV2
    CreateSummaryFileWriter CreateSummaryDbWriter SummaryWriter
    WriteSummary WriteScalarSummary WriteAudioSummary WriteGraphSummary
    WriteHistogramSummary WriteImageSummary WriteRawProtoSummary
    FlushSummaryWriter CloseSummaryWriter ImportEvent
    InitializeTableFromTextFile InitializeTableFromTextFileV2
    TFRecordDataset TFRecordDatasetV2 FixedLengthRecordDataset
    FixedLengthRecordDatasetV2 TextLineDataset SqlDataset LMDBDataset
    CSVDataset CSVDatasetV2 ExperimentalCSVDataset SnapshotDataset
    SnapshotDatasetV2 LoadDataset SaveDataset SaveDatasetV2
    DatasetToTFRecord TFRecordReader TFRecordReaderV2 TextLineReader
    TextLineReaderV2 WholeFileReader WholeFileReaderV2
    FixedLengthRecordReader FixedLengthRecordReaderV2 LMDBReader
    IdentityReader IdentityReaderV2 ImmutableConst LoadAndRemapMatrix
    GenerateVocabRemapping DecodeProtoV2 EncodeProto Skipgram
    DebugIdentity DebugIdentityV2 DebugIdentityV3 RemoteCall Send Recv
    """.split()
)


def _read(directory: str) -> saved_model_pb2.SavedModel:
    path = os.path.join(directory, "saved_model.pb")
    with open(path, "rb") as f:
        data = f.read()
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError
        raise ValueError(f"saved_model.pb does not parse ({error})") from None
    if not proto.meta_graphs:
        raise ValueError("saved_model.pb has no meta graph")
    return proto


def callable_op_types(directory: str) -> tuple[dict[str, str], list[str]]:
    """Returns ({denied or unknown op type: a function using it}, asset
    file names) for the SavedModel in `directory`."""
    meta = _read(directory).meta_graphs[0]
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    roots = set(meta.object_graph_def.concrete_functions)
    for node in meta.object_graph_def.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            roots.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            roots.add(node.bare_concrete_function.concrete_function_name)
    registered = set(dir(tf.raw_ops))
    flagged: dict[str, str] = {}
    seen: set[str] = set()
    stack = [name for name in roots if name in library]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in library[name].node_def:
            if node.op in library:
                stack.append(node.op)
            elif node.op in DENIED_OPS or node.op not in registered:
                flagged.setdefault(node.op, name)
            for value in node.attr.values():
                if value.func.name:
                    stack.append(value.func.name)
                stack.extend(f.name for f in value.list.func)
    assets = [a.filename for a in meta.asset_file_def]
    for node in meta.object_graph_def.nodes:
        if node.WhichOneof("kind") == "asset":
            assets.append(
                meta.asset_file_def[node.asset.asset_file_def_index].filename
                if node.asset.asset_file_def_index < len(meta.asset_file_def)
                else ""
            )
    return flagged, sorted(set(a for a in assets if a))
