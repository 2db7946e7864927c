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
