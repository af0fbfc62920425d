"""HTML pages of matching rounds: the park manager's pages (manager_pages) and the enterprises' proposals,
agreements and deliveries (deal_pages). Both call the same services as the JSON API."""

from __future__ import annotations

from fastapi import APIRouter

from exchange.rounds import deal_pages, manager_pages

router = APIRouter(include_in_schema=False)
router.include_router(manager_pages.router)
router.include_router(deal_pages.router)
