package server

// ConnectionsAccepted returns the number of connections accepted since
// the server started (Kafka's connection-creation-total).
func (s *Server) ConnectionsAccepted() int64 { return s.connsAccepted.Load() }

// Authentications returns the SASL authentications that succeeded and
// failed since the server started (Kafka's successful-authentication-total
// and failed-authentication-total).
func (s *Server) Authentications() (succeeded, failed int64) {
	return s.authOK.Load(), s.authFailed.Load()
}

// ConnectionsRejected returns the connections closed at accept since the
// server started because their IP address had max.connections.per.ip
// open (Kafka logs TooManyConnectionsException for each).
func (s *Server) ConnectionsRejected() int64 { return s.connsRejected.Load() }
