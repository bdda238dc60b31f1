"""The pipeline board in a real browser: dragging a card calls the same service as the
API, the column totals follow, and a refused move puts the card back with the reason."""

from decimal import Decimal

import pytest

from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import Opportunity, StageChange
from tests.conftest import PASSWORD


@pytest.fixture
def board(org, transactional_db):
    """Two pipelines (strict D/C/B/A, advisory classic) with two open deals each, owned
    by east_rep."""
    rep = org.east_rep
    account = create_account(actor=rep, name="上海恒信科技有限公司")
    dcba = services.create_pipeline_from_template("dcba")
    classic = services.create_pipeline_from_template("classic", checklist_mode="advisory")
    deals = {}
    for pipeline in (dcba, classic):
        for name, amount in (("A deal", 100_000), ("B deal", 40_000)):
            deals[pipeline.template, name] = services.create_opportunity(
                actor=rep, pipeline=pipeline, account=account, name=f"{pipeline.template} {name}",
                amount=Decimal(amount),
            )  # fmt: skip
    return {"rep": rep, "dcba": dcba, "classic": classic, "deals": deals}


def drag(page, card_selector, column_selector):
    """Drag with the mouse, in small steps, as a person does."""
    card = page.locator(card_selector).bounding_box()
    target = page.locator(column_selector).bounding_box()
    page.mouse.move(card["x"] + 20, card["y"] + 20)
    page.mouse.down()
    page.mouse.move(card["x"] + 30, card["y"] + 30, steps=5)
    x, y = target["x"] + target["width"] / 2, target["y"] + 40
    page.mouse.move(x, y, steps=20)
    # Let SortableJS see the pointer settle inside the target before the drop; on a busy
    # machine the last moves of a fast drag can arrive after the button is released.
    page.wait_for_timeout(200)
    page.mouse.move(x + 4, y + 4, steps=4)
    page.wait_for_timeout(200)
    page.mouse.up()


def test_drag_moves_card_and_updates_totals(page, board, login, screenshot):
    """Dragging a deal from 感兴趣 to 询价 moves it in the database, records the change,
    and the count and amount of both columns change on the page."""
    pipeline = board["classic"]
    first, second = pipeline.open_stages()[:2]
    deal = board["deals"]["classic", "A deal"]
    login(page, "east_rep", PASSWORD)
    page.goto(f"/pipeline/board/{pipeline.pk}/")
    page.locator(f"#opp-{deal.pk}").wait_for()
    assert page.get_by_test_id(f"count-{first.pk}").inner_text() == "2"
    assert page.get_by_test_id(f"count-{second.pk}").inner_text() == "0"

    drag(page, f"#opp-{deal.pk}", f"[data-testid=column-{second.pk}]")

    page.locator(f"[data-testid=column-{second.pk}] #opp-{deal.pk}").wait_for()
    page.wait_for_function(
        f"document.querySelector('[data-testid=count-{second.pk}]').innerText === '1'"
    )
    assert page.get_by_test_id(f"count-{first.pk}").inner_text() == "1"
    assert page.get_by_test_id(f"amount-{second.pk}").inner_text() == "¥100,000"
    assert page.get_by_test_id(f"amount-{first.pk}").inner_text() == "¥40,000"
    deal.refresh_from_db()
    assert deal.stage == second
    assert deal.version == 2
    assert StageChange.objects.filter(opportunity=deal, kind="moved", to_stage=second).count() == 1
    screenshot(page, "board-after-drag.png")


def test_drag_refused_by_checklist_returns_card(page, board, login, screenshot):
    """In a strict pipeline, dragging a deal whose checklist is not ticked is refused: the
    card goes back to its column, the reason is shown, and nothing changes."""
    pipeline = board["dcba"]
    first, second = pipeline.open_stages()[:2]
    deal = board["deals"]["dcba", "A deal"]
    login(page, "east_rep", PASSWORD)
    page.goto(f"/pipeline/board/{pipeline.pk}/")
    page.locator(f"#opp-{deal.pk}").wait_for()

    drag(page, f"#opp-{deal.pk}", f"[data-testid=column-{second.pk}]")

    toast = page.get_by_test_id("toast")
    toast.wait_for()
    assert first.checklist[0] in toast.inner_text()
    page.locator(f"[data-testid=column-{first.pk}] #opp-{deal.pk}").wait_for()
    assert page.get_by_test_id(f"count-{first.pk}").inner_text() == "2"
    assert page.get_by_test_id(f"count-{second.pk}").inner_text() == "0"
    screenshot(page, "board-refused.png")
    deal.refresh_from_db()
    assert (deal.stage, deal.version) == (first, 1)
    assert StageChange.objects.filter(opportunity=deal).count() == 1


def test_drop_on_won_closes_the_deal(page, board, login):
    """Dropping an advisory-pipeline deal on the won zone wins it and removes the card."""
    pipeline = board["classic"]
    deal = board["deals"]["classic", "B deal"]
    login(page, "east_rep", PASSWORD)
    page.goto(f"/pipeline/board/{pipeline.pk}/")
    page.locator(f"#opp-{deal.pk}").wait_for()

    drag(page, f"#opp-{deal.pk}", "[data-testid=drop-won]")

    page.locator(f"#opp-{deal.pk}").wait_for(state="detached")
    assert Opportunity.objects.get(pk=deal.pk).status == "won"
