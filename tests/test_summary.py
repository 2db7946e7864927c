"""The shared event summary used by chat and email backends."""

from wagtail_publish_hooks.summary import summarize


def test_page_event_summary():
    summary = summarize(
        {
            "id": "evt_1",
            "type": "page.published",
            "data": {
                "page": {
                    "title": "Hello",
                    "type": "blog.BlogPage",
                    "url": "https://www.example.com/hello/",
                    "urls": [],
                },
                "actor": {"id": 1, "username": "admin"},
                "scheduled": False,
            },
        }
    )
    assert summary.sentence == "“Hello” was published by admin"
    assert summary.site == "www.example.com"
    assert summary.label == "Page published"
    assert summary.tone == "good"
    assert summary.object_type == "blog.BlogPage"


def test_scheduled_and_moved_and_custom():
    moved = summarize(
        {
            "id": "evt_2",
            "type": "page.moved",
            "data": {
                "page": {"title": "X", "url": None, "urls": ["https://a.example/x/"]},
                "actor": None,
                "scheduled": True,
                "moved": {"urls_before": ["https://a.example/old/"]},
            },
        }
    )
    assert moved.sentence == "“X” was moved on schedule"
    assert moved.url == "https://a.example/x/"
    assert moved.previous_url == "https://a.example/old/"
    custom = summarize(
        {
            "id": "evt_3",
            "type": "shop.order_shipped",
            "data": {"object": {"repr": "Order 7"}, "actor": None},
        }
    )
    assert custom.sentence == "“Order 7” was order shipped"
    assert custom.label == "shop.order_shipped"


def published(data: dict) -> str | None:
    return summarize({"id": "evt_4", "type": "page.published", "data": data}).changes


def test_what_changed_in_words():
    def changes(*labels: str) -> list[dict]:
        return [{"field": label.replace(" ", "_"), "label": label} for label in labels]

    assert published({"first_publish": True, "changes": []}) == "First published"
    assert published({"first_publish": False, "changes": []}) == "Nothing changed"
    assert published({"first_publish": False, "changes": None}) is None
    assert published({}) is None  # recorded before publishes said what changed
    assert published({"changes": changes("title")}) == "Title changed"
    assert published({"changes": changes("title", "body")}) == "Title and body changed"
    assert published({"changes": changes("title", "intro", "body", "show in menus")}) == (
        "Title, intro, body and show in menus changed"
    )
    assert published({"changes": changes("a", "b", "c", "d", "e")}) == (
        "A, b, c and 2 other fields changed"
    )
    # A field without a label is named by its name; anything else is left out.
    assert published({"changes": [{"field": "intro"}, "junk", {"label": 3}]}) == "Intro changed"
    # Labels are cut, and values never shown.
    long = published({"changes": [{"field": "x", "label": "y" * 500, "old": "o", "new": "n"}]})
    assert long is not None and len(long) < 60
    # Other event types do not say what changed.
    moved = summarize({"type": "page.moved", "data": {"changes": changes("title")}})
    assert moved.changes is None


def image_changed(**image):
    return {
        "id": "evt_4",
        "type": "image.changed",
        "data": {
            "image": {
                "id": 5,
                "type": "wagtailimages.Image",
                "title": "Sunset",
                "url": "/media/original_images/sunrise.png",
                "urls": ["/media/original_images/sunrise.png", "/media/original_images/sunset.png"],
                **image,
            },
            "actor": {"id": 1, "username": "admin"},
            "changes": [
                {"field": "file", "label": "file", "old": "a.png", "new": "b.png"},
                {"field": "title", "label": "title", "old": "Dusk", "new": "Sunset"},
                {"field": "focal_point", "label": "focal point"},
            ],
        },
    }


def test_media_event_summary_says_what_changed():
    summary = summarize(image_changed())
    assert summary.sentence == "“Sunset” was changed (new file, title, focal point) by admin"
    assert summary.label == "Image changed"
    assert summary.object_type == "wagtailimages.Image"
    # A relative media URL belongs to no site: no link, rather than a broken one.
    assert summary.url is None and summary.site is None
    on_a_cdn = summarize(image_changed(url="https://cdn.example.com/sunrise.png"))
    assert on_a_cdn.url == "https://cdn.example.com/sunrise.png"
    assert on_a_cdn.site == "cdn.example.com"


def test_media_deletion_summary():
    summary = summarize(
        {
            "id": "evt_5",
            "type": "document.deleted",
            "data": {
                "document": {"id": 3, "type": "wagtaildocs.Document", "title": "Report"},
                "actor": None,
            },
        }
    )
    assert summary.sentence == "“Report” was deleted"
    assert summary.label == "Document deleted"
    assert summary.tone == "danger"


def test_chat_messages_about_media_read_well():
    from wagtail_publish_hooks.backends import discord, teams
    from wagtail_publish_hooks.backends.slack import SlackBackend

    payload = image_changed()
    sentence = "“Sunset” was changed (new file, title, focal point) by admin"
    slack = SlackBackend(alias="team", options={"URL": "https://hooks.slack.com/x"})
    assert slack.build_message(payload)["text"] == (
        "*Sunset* was changed (new file, title, focal point) by admin."
    )
    assert discord.build_message(payload)["content"] == discord.escape_markdown(sentence)
    card = teams.build_message(payload)["attachments"][0]["content"]
    assert "actions" not in card  # no link to a relative URL
    assert "Image changed" in str(card)
    on_a_cdn = image_changed(url="https://cdn.example.com/sunrise.png")
    card = teams.build_message(on_a_cdn)["attachments"][0]["content"]
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "View image",
            "url": "https://cdn.example.com/sunrise.png",
        }
    ]
