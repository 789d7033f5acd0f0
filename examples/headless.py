"""A hook without IPython: connect, hook your own PEP node, publish, read the result."""

import asyncio
import os

from pubsub_hook_magic import HookManager


async def main() -> None:
    host = HookManager()  # python_code hooks share host.namespace (a fresh dict here)
    await host.connect(
        os.environ["XMPP_JID"],
        os.environ["XMPP_PASSWORD"],
        host=os.environ.get("XMPP_HOST"),  # None: found from the JID's domain
        port=int(os.environ.get("XMPP_PORT", "5222")),
        tls=os.environ.get("XMPP_NO_TLS") != "1",  # plaintext only for a loopback test server
    )
    host.namespace["seen"] = []
    await host.create_hook(None, "urn:example:notes", "python_code", 'seen.append(item["id"])')
    await host.publish(None, "urn:example:notes", '<note xmlns="urn:example">hi</note>', "n1")
    while not host.namespace["seen"]:
        await asyncio.sleep(0.1)
    print("seen:", host.namespace["seen"])
    print([(h["type"], h["triggers"]) for h in host.list_hooks()])
    print(await host.delete_hooks(None, "urn:example:notes"), "hook(s) deleted")
    await host.disconnect()


asyncio.run(main())
