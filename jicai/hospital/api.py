"""The workspace's API under /api/v1/hospital/, one router per workflow."""

from ninja import Router

from jicai.hospital.control.api import router as control
from jicai.hospital.demand.api import router as demand
from jicai.hospital.feedback.api import router as feedback
from jicai.hospital.formulary.api import router as formulary
from jicai.hospital.registers.api import router as registers
from jicai.hospital.surplus.api import router as surplus
from jicai.hospital.targets.api import router as targets

router = Router()
router.add_router("/demand", demand)
router.add_router("/targets", targets)
router.add_router("/feedback", feedback)
router.add_router("/control", control)
router.add_router("/formulary", formulary)
router.add_router("/surplus", surplus)
router.add_router("/registers", registers)
