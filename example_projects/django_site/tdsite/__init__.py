"""td_web's Django example site: a small shop with a contact form, a JSON API and a login."""
