-- Substring search of users (the console's and the API's search box) from
-- a trigram index instead of a scan of every user: FTS5's trigram
-- tokenizer finds any substring of three or more characters, ignoring
-- case. It holds what the search compares (the username key, the email,
-- the full name); triggers keep it in step with users. The search still
-- checks each row it finds exactly, so the index only narrows.
CREATE VIRTUAL TABLE users_search USING fts5(text, tokenize = 'trigram');
INSERT INTO users_search (rowid, text)
	SELECT id, username_key || char(10) || email || char(10) || first_name || ' ' || last_name FROM users;
CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
	INSERT INTO users_search (rowid, text) VALUES (new.id, new.username_key || char(10) || new.email || char(10) || new.first_name || ' ' || new.last_name);
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF username_key, email, first_name, last_name ON users BEGIN
	DELETE FROM users_search WHERE rowid = old.id;
	INSERT INTO users_search (rowid, text) VALUES (new.id, new.username_key || char(10) || new.email || char(10) || new.first_name || ' ' || new.last_name);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
	DELETE FROM users_search WHERE rowid = old.id;
END;
