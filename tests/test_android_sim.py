"""The simulated phone behaves like a phone to the unmodified adbutils client and adb CLI."""

import subprocess

from environments.android_sim.session import adb_binary


def test_shell_v1_v2_and_exit_codes(phone):
    device = phone.client.device(phone.serial)
    assert device.shell("echo hello world") == "hello world"
    ok = device.shell2("true && echo yes || echo no", v2=True)
    assert (ok.returncode, ok.stdout.strip()) == (0, "yes")
    missing = device.shell2("frobnicate", v2=True)
    assert missing.returncode == 127 and "not found" in missing.stderr
    assert device.shell2("false; echo after", rstrip=True).output.strip() == "after"


def test_the_adb_cli_uses_the_shell_protocol(phone, adb_server):
    result = subprocess.run([adb_binary(), "-P", str(adb_server.port), "-s", phone.serial, "shell", "echo hi; false"],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "hi" and result.returncode == 1


def test_window_size_and_rotation_follow_the_phone(phone):
    device = phone.client.device(phone.serial)
    assert (device.window_size().width, device.window_size().height, device.rotation()) == (1080, 2400, 0)
    phone.control(rotation=1)
    device.shell("true")
    assert device.rotation() == 1
    assert tuple(device.window_size()) == (2400, 1080)


def test_input_text_is_ascii_only_as_on_android(phone):
    device = phone.client.device(phone.serial)
    device.shell(["monkey", "-p", "com.example.notes", "-c", "android.intent.category.LAUNCHER", "1"])
    device.click(540, 400)  # the note field
    device.send_keys("buy milk %s now")
    assert phone.state()["fields"]["note"] == "buy milk   now"
    failed = device.shell2(["input", "text", "é"], v2=True)
    assert failed.returncode != 0 and "NullPointerException" in failed.stderr


def test_keys_and_launching(phone):
    device = phone.client.device(phone.serial)
    device.app_start("com.android.settings")
    assert device.app_current().package == "com.android.settings"
    device.keyevent("KEYCODE_HOME")
    assert phone.state()["foreground"] == "com.google.android.apps.nexuslauncher"
    assert "No activities found" in device.shell(["monkey", "-p", "com.nope", "-c", "android.intent.category.LAUNCHER", "1"])
