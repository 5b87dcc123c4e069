#ifndef NIXBRIDGE_CSSH2_SHIM_H
#define NIXBRIDGE_CSSH2_SHIM_H
#include <libssh2.h>
#include <string.h>

// libssh2's convenience API is function-like macros, which Swift cannot import.
static inline LIBSSH2_SESSION *nb_ssh2_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}
static inline LIBSSH2_CHANNEL *nb_ssh2_channel_open_session(LIBSSH2_SESSION *s, unsigned int window) {
    return libssh2_channel_open_ex(s, "session", sizeof("session") - 1, window,
                                   LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}
static inline int nb_ssh2_channel_exec(LIBSSH2_CHANNEL *c, const char *command) {
    return libssh2_channel_process_startup(c, "exec", sizeof("exec") - 1,
                                           command, (unsigned int)strlen(command));
}
static inline int nb_ssh2_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user,
                                                      const char *pub, const char *priv,
                                                      const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, (unsigned int)strlen(user),
                                                  pub, priv, passphrase);
}
static inline ssize_t nb_ssh2_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t n) {
    return libssh2_channel_read_ex(c, 0, buf, n);
}
static inline ssize_t nb_ssh2_channel_read_stderr(LIBSSH2_CHANNEL *c, char *buf, size_t n) {
    return libssh2_channel_read_ex(c, SSH_EXTENDED_DATA_STDERR, buf, n);
}
static inline ssize_t nb_ssh2_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t n) {
    return libssh2_channel_write_ex(c, 0, buf, n);
}
static inline int nb_ssh2_session_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, why, "");
}
static inline unsigned long nb_ssh2_channel_window_default(void) {
    return LIBSSH2_CHANNEL_WINDOW_DEFAULT;
}
#endif
