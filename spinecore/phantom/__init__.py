"""Synthetic lumbar studies with ground truth: the project's test bed.

>>> from spinecore.phantom import PhantomSpec, make_phantom, write_phantom
>>> study = make_phantom(PhantomSpec(seed=3))          # doctest: +SKIP
>>> write_phantom(study, Path("phantom-3"))            # doctest: +SKIP
"""
from spinecore.phantom.anatomy import DiscGrades
from spinecore.phantom.study import PhantomSpec, PhantomStudy, make_phantom, write_phantom

__all__ = ["DiscGrades", "PhantomSpec", "PhantomStudy", "make_phantom", "write_phantom"]
