from pathlib import Path

from setuptools import find_packages, setup

COHORT = ["distributed>=2024.1", "tqdm>=4.60"]  # spinecore batch: Dask cluster, progress bar
DICOM = ["highdicom>=0.28"]  # --dicom-out: DICOM SEG and SR writers
SERVE = ["fastapi>=0.110", "uvicorn>=0.29", "python-multipart>=0.0.18"]  # spinecore serve: the web service
SERVE_TESTS = ["httpx2>=2.0", "playwright>=1.45", "psutil>=5.9"]  # API client, headless Chromium, memory of the load check

setup(
    name="spinecore",
    version="0.1.0",
    description="Lumbar spine MRI: vertebra labelling, disc grading and evidence hotspots (SpineNet rebuilt)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # the bundled models ship inside the package, read from Resources/Models (their one home)
    packages=[*find_packages(include=["spinecore", "spinecore.*"]), "spinecore.bundled_models"],
    package_dir={"spinecore.bundled_models": "Resources/Models"},
    package_data={"spinecore.bundled_models": ["*.pt", "*.md"], "spinecore.serve": ["pages/*"]},
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-image>=0.21",
        "scikit-learn>=1.3",
        "pydicom>=3.0",
        "SimpleITK>=2.3",
        "torch==2.13.0",  # pinned: an unpinned torch pulls a multi-GB CUDA build
        "matplotlib>=3.7",
    ],
    extras_require={
        "cohort": COHORT,
        "dicom": DICOM,
        "serve": SERVE,
        # pytest-xdist: the suite runs in two processes; slicer-core: real MRML nodes (Slicer tests)
        "test": ["pytest>=8", "pytest-xdist>=3.5", "slicer-core==5.13.31053.0", *COHORT, *DICOM, *SERVE, *SERVE_TESTS],
    },
    entry_points={"console_scripts": ["spinecore=spinecore.cli:main"]},
)
