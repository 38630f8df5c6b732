"""Dataset readers in the datasets' own file formats, and the torch datasets that load images.

Every reader returns a :class:`RecordSet` of :class:`Record` s and counts what it skipped;
a missing root or label file is a :class:`~framescore.errors.DataError` with one clear line.
"""

from framescore.train.data.aadb import read_aadb, read_ratings
from framescore.train.data.arod import read_arod
from framescore.train.data.ava import generic_test_ids, read_ava, read_content, read_style
from framescore.train.data.folder import read_folder
from framescore.train.data.records import (
    ImageDataset,
    PairDataset,
    Record,
    RecordSet,
    TripletDataset,
    check_images,
    collate_skip,
    load_image,
    spec_view,
)

__all__ = [
    "ImageDataset", "PairDataset", "Record", "RecordSet", "TripletDataset", "check_images",
    "collate_skip", "generic_test_ids", "load_image", "read_aadb", "read_arod", "read_ava",
    "read_content", "read_folder", "read_ratings", "read_style", "spec_view",
]
