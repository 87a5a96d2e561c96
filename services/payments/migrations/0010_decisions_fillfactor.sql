-- Every decision is rewritten once when an evaluation changes it (a national one: 2.1 million
-- rows). Pages filled to the brim put half the new versions on another page, and each of those
-- adds a primary-key entry and leaves the table larger; room left on every page for the new
-- version keeps the update on its page (a HOT update, no index touched).
ALTER TABLE decisions SET (fillfactor = 60);
