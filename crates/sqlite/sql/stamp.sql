-- A mark of the committed state (Store::stamp): SQLite counts the commits other
-- connections made to the database file; reading it touches no table and no lock.
PRAGMA data_version
