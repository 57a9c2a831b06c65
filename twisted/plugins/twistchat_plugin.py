"""``twistd twistchat``: the chat server (code in twistchat.chat.server.service)."""

from zope.interface import implementer

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin


@implementer(IServiceMaker, IPlugin)
class _TwistchatServiceMaker:
    tapname = "twistchat"
    description = "A chat network over UDP with its own reliable transport."

    @property
    def options(self):
        from twistchat.chat.server.service import Options
        return Options

    def makeService(self, options):
        from twistchat.chat.server.collector import tune_collector
        from twistchat.chat.server.service import make_service
        made = make_service(options)
        tune_collector()  # a server process's policy, not a library's: set here only
        return made


serviceMaker = _TwistchatServiceMaker()
