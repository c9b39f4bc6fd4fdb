"""What a browser gets at a dashboard address that is not a page (a form's action typed in
the address bar, a path that does not exist): the page it meant, or an error page in the
dashboard's layout, while REST clients keep their problem details."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Any]

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_opening_migrations_in_the_browser_renders_the_migrations_list(
    client: Client,
) -> None:
    # When a signed-in user types /migrations (the new-migration form's action)
    response = await client.get("/migrations", headers=BROWSER, follow_redirects=False)

    # Then the migrations list is rendered there, not a redirect
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "No migrations yet" in response.text
    home = await client.get("/", headers=BROWSER)
    assert response.text == home.text


async def test_a_forms_action_opened_in_the_browser_is_a_page_saying_so(client: Client) -> None:
    # When a browser opens the sign-out form's action as a page
    response = await client.get("/sign-out", headers=BROWSER)

    # Then it answers 405 with a page in the dashboard's layout, not JSON
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert '<a class="brand" href="/">cstor</a>' in response.text
    assert "/sign-out is where a form sends what you enter, not a page" in response.text
    assert "POST" in response.headers.get("allow", "")


async def test_a_path_that_does_not_exist_is_a_page_saying_so(visitor: Client) -> None:
    # When a browser opens a dashboard path that does not exist (signed in or not)
    response = await visitor.get("/migratons/<b>typo</b>", headers=BROWSER)

    # Then it answers 404 with a page in the layout naming the path, escaped
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no page at /migratons/&lt;b&gt;typo&lt;/b&gt;" in response.text
    assert "<b>typo</b>" not in response.text
    assert 'href="/"' in response.text


async def test_rest_clients_keep_their_problem_details(client: Client) -> None:
    # When a REST client, or anything not asking for HTML, gets a path or method wrong
    for response in (
        await client.get("/api/v1/no-such-thing", headers=BROWSER),
        await client.delete("/api/v1/migrations", headers=BROWSER),
        await client.get("/sign-out", headers={"accept": "application/json"}),
        await client.get("/no-such-page"),
    ):
        # Then the answer is problem details, as before
        assert response.status_code in (404, 405)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == response.status_code
