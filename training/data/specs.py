"""Every dataset the project knows, one :class:`DatasetSpec` each: adding a dataset is one more
``register(DatasetSpec(...))`` here (plus a reader in ``formats/`` if its on-disk format is new).

Normalisation constants are the paper's (``method.md``); datasets the paper did not use carry
their own, computed with ``python -m training.data.stats NAME``. Each zoo entry's manifest
``preprocessing`` must equal its dataset's constants (a test checks it).
"""

from __future__ import annotations

from training.data.formats.cifar_pickle import CifarPickle
from training.data.formats.idx import Idx
from training.data.formats.image_folder import ImageFolder
from training.data.formats.npz_pack import NpzArrays, NpzJpeg
from training.data.formats.stl10_binary import Stl10Binary
from training.data.formats.tiny_imagenet import TinyImageNetTree
from training.data.formats.user_folder import FolderResolver
from training.data.registry import DatasetSpec, register, register_resolver

CIFAR10_MEAN, CIFAR10_STD = (0.491, 0.482, 0.447), (0.247, 0.243, 0.262)
CIFAR100_MEAN, CIFAR100_STD = (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)
TRAIN_TEST_50K = {"train": 50_000, "test": 10_000}
OFFLINE_PACK = ("Part of the maintainers' offline data pack, found without --data-root in $RR_SHARED_DATA or in "
                "shared/data beside the checkout; its README and build scripts say where the images come from. "
                "Users: the same images are the `cifar10` dataset (torchvision's download).")

# ----------------------------------------------------------------------------- CIFAR (torchvision pickles)
_C10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_C100_FILES = {"train": ("train",), "test": ("test",)}
_C100_GET = ("torchvision.datasets.CIFAR100(ROOT, download=True) writes it (or `load_split(..., download=True)`); "
             "https://www.cs.toronto.edu/~kriz/cifar.html")

register(DatasetSpec(
    name="cifar10", description="CIFAR-10",
    image_size=32, channels=3, num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD,
    splits=("train", "test"), pretrain_split="train", split_sizes=TRAIN_TEST_50K, cutout_area=0.25,
    reader=CifarPickle("cifar-10-batches-py", _C10_FILES, "labels", "batches.meta", "label_names"),
    expected_files="cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (torchvision format).",
    how_to_get="torchvision.datasets.CIFAR10(ROOT, download=True) writes it (or `load_split(..., download=True)`); "
               "https://www.cs.toronto.edu/~kriz/cifar.html",
    torchvision_name="CIFAR10",
))
register(DatasetSpec(
    name="cifar100", description="CIFAR-100 (fine labels)",
    image_size=32, channels=3, num_classes=100, mean=CIFAR100_MEAN, std=CIFAR100_STD,
    splits=("train", "test"), pretrain_split="train", split_sizes=TRAIN_TEST_50K, cutout_area=0.0625,
    reader=CifarPickle("cifar-100-python", _C100_FILES, "fine_labels", "meta", "fine_label_names"),
    expected_files="cifar-100-python/{train,test,meta} (torchvision format).",
    how_to_get=_C100_GET, torchvision_name="CIFAR100",
))
register(DatasetSpec(
    name="cifar100_20", description="CIFAR-100 images with the 20 coarse (super-class) labels",
    image_size=32, channels=3, num_classes=20, mean=CIFAR100_MEAN, std=CIFAR100_STD,
    splits=("train", "test"), pretrain_split="train", split_sizes=TRAIN_TEST_50K, cutout_area=0.0625,
    reader=CifarPickle("cifar-100-python", _C100_FILES, "coarse_labels", "meta", "coarse_label_names"),
    expected_files="cifar-100-python/{train,test,meta} (the same files as cifar100).",
    how_to_get=_C100_GET, torchvision_name="CIFAR100",
))

# ----------------------------------------------------------------------------- offline pack (CIFAR-10 subsets)
register(DatasetSpec(
    name="cifar10_4k", description="First 4,000 CIFAR-10 training images, lossless (offline pack)",
    image_size=32, channels=3, num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD,
    splits=("train",), pretrain_split="train", split_sizes={"train": 4_000}, cutout_area=0.25,
    reader=NpzArrays("cifar10_4k.npz"),
    expected_files="cifar10_4k.npz.", how_to_get=OFFLINE_PACK,
))
register(DatasetSpec(
    name="cifar10_jpeg", description="All of CIFAR-10 as small JPEGs (lossy; offline pack)",
    image_size=32, channels=3, num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD,
    splits=("train", "test"), pretrain_split="train", split_sizes=TRAIN_TEST_50K, cutout_area=0.25,
    reader=NpzJpeg("cifar10_jpeg.npz"),
    expected_files="cifar10_jpeg.npz.", how_to_get=OFFLINE_PACK,
    notes={"mean/std": "CIFAR-10's constants; the decoded JPEGs measure mean 0.491, 0.482, 0.447, "
                       "std 0.245, 0.243, 0.261"},
))

# ----------------------------------------------------------------------------- STL-10 (binary)
register(DatasetSpec(
    name="stl10", description="STL-10 (100k unlabeled + 5k train + 8k test, 96x96)",
    image_size=96, channels=3, num_classes=10, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    splits=("unlabeled", "train", "test", "train+unlabeled"), pretrain_split="unlabeled",
    split_sizes={"unlabeled": 100_000, "train": 5_000, "test": 8_000, "train+unlabeled": 105_000},
    cutout_area=0.111, reader=Stl10Binary("stl10_binary"),
    expected_files="stl10_binary/{unlabeled_X.bin,train_X.bin,train_y.bin,test_X.bin,test_y.bin,class_names.txt}.",
    how_to_get="torchvision.datasets.STL10(ROOT, download=True) writes it (or `load_split(..., download=True)`); "
               "https://cs.stanford.edu/~acoates/stl10/",
    torchvision_name="STL10",
))

# ----------------------------------------------------------------------------- ImageFolder trees
register(DatasetSpec(
    name="tinyimagenet", description="Tiny ImageNet 200 (64x64)",
    image_size=64, channels=3, num_classes=200, mean=(0.4802, 0.4481, 0.3975), std=(0.2764, 0.2689, 0.2816),
    splits=("train", "val"), pretrain_split="train", split_sizes={"train": 100_000, "val": 10_000},
    cutout_area=0.25, reader=TinyImageNetTree("tiny-imagenet-200"),
    expected_files="tiny-imagenet-200/wnids.txt with train/<wnid>/images/*.JPEG and val/images/*.JPEG + "
                   "val/val_annotations.txt (the official zip's layout), or train/<wnid>/*.JPEG and "
                   "val/<wnid>/*.JPEG (ImageFolder layout).",
    how_to_get="http://cs231n.stanford.edu/tiny-imagenet-200.zip, unzipped into ROOT (the official layout is "
               "read as it is); offline maintainers: ../shared/data/scripts/build_tiny_imagenet.py.",
    notes={"classes": "200, in wnids.txt order",
           "mean/std": "measured on the 100,000 training images: python -m training.data.stats tinyimagenet "
                       "(the original code used 0.5 / 0.25)"},
))
register(DatasetSpec(
    name="slimagenet64", description="SlimageNet64 (Antoniou et al. 2020): 1000 ImageNet classes, 64x64",
    image_size=64, channels=3, num_classes=1000, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
    splits=("train", "test"), pretrain_split="train", split_sizes={"train": 160_000, "test": 40_000},
    cutout_area=0.25, reader=ImageFolder("SlimageNet64"),
    expected_files="SlimageNet64/{train,test}/<class>/<image> in ImageFolder layout, as the original code reads it.",
    how_to_get="https://zenodo.org/record/3672132, uncompressed into ROOT/SlimageNet64/.",
    notes={"split_sizes": "200 images per class: 160 train, 40 test"},
))

# ----------------------------------------------------------------------------- Fashion-MNIST (idx)
# ----------------------------------------------------------------------------- your own images
# `folder:PATH` (also `image-folder:PATH`, or a plain path to an existing folder): built from the files
# when a run names it, at the run's image size (formats/user_folder.py)
register_resolver("folder:", FolderResolver(), aliases=("image-folder:",))

register(DatasetSpec(
    name="fashionmnist", description="Fashion-MNIST (28x28 grayscale, kept one-channel)",
    image_size=28, channels=1, num_classes=10, mean=(0.2860,), std=(0.3530,),
    splits=("train", "test"), pretrain_split="train", split_sizes={"train": 60_000, "test": 10_000},
    cutout_area=0.25,
    reader=Idx("FashionMNIST/raw", {"train": "train", "test": "t10k"},
               ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot")),
    expected_files="FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (torchvision format).",
    how_to_get="torchvision.datasets.FashionMNIST(ROOT, download=True) writes it (or `load_split(..., "
               "download=True)`); offline maintainers: ../shared/data/scripts/install_fashion_mnist.sh ROOT.",
    torchvision_name="FashionMNIST",
    notes={"mean/std": "computed from the 60,000 training images: python -m training.data.stats fashionmnist"},
))
