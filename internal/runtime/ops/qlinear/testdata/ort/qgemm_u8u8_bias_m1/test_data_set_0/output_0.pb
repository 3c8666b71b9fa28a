
ByJ<ÍáoUšKˆ²‘o`g8¥H?_`mu˜¦i˜…TWPeiPa7PDˆŽkfk2G„K‹o6=/-ƒ