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
        from twistchat.chat.server.collector import heap_trim_service, tune_collector
        from twistchat.chat.server.service import make_service
        made = make_service(options)
        tune_collector()  # a server process's policy, not a library's: set here only
        trimming = heap_trim_service()  # the same: memory given back to the system
        if trimming is not None:
            trimming.setServiceParent(made)
        from twisted.internet import reactor
        from twistchat.chat.server.stall_watch import StallWatch
        StallWatch(reactor, sampling=True).setServiceParent(made)  # the reactor's lag, and where
        return made


serviceMaker = _TwistchatServiceMaker()
