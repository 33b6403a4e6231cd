from handler.naming import object_key


def test_object_key():
    assert object_key("abcd") == "raw/ab/abcd.png"
