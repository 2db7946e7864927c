"""The delivery log in the admin: the report, a delivery's detail, redeliver and cancel, an object's
deliveries, the dashboard panel and the capture failures."""
